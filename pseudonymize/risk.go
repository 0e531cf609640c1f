package pseudonymize

// This file computes the re-identification risk report
// (docs/pseudonymization.md#re-identification-risk) from the sizes of
// the equivalence classes over the quasi-identifiers. It is pure arithmetic: the class
// sizes come from ingest.ClassSizes, which reads the data; nothing here does I/O.

// ClassSize is one row of an equivalence-class size histogram: Classes classes hold
// exactly Size records each. An equivalence class is the set of records that share one
// combination of quasi-identifier values (a NULL is a value of its own).
type ClassSize struct {
	Size    int64 `json:"size"`
	Classes int64 `json:"classes"`
}

// SizeBucket is one bucket of the report's histogram: the classes whose size lies in
// [MinSize, MaxSize] (MaxSize 0: no upper bound) and the records they hold.
type SizeBucket struct {
	Label   string `json:"size"`
	MinSize int64  `json:"min_size"`
	MaxSize int64  `json:"max_size,omitempty"`
	Classes int64  `json:"classes"`
	Records int64  `json:"records"`
}

// riskBuckets are the histogram's buckets, in order; every report lists all of them, so
// two reports line up.
var riskBuckets = []SizeBucket{
	{Label: "1", MinSize: 1, MaxSize: 1},
	{Label: "2", MinSize: 2, MaxSize: 2},
	{Label: "3-4", MinSize: 3, MaxSize: 4},
	{Label: "5-9", MinSize: 5, MaxSize: 9},
	{Label: "10-19", MinSize: 10, MaxSize: 19},
	{Label: "20-49", MinSize: 20, MaxSize: 49},
	{Label: "50-99", MinSize: 50, MaxSize: 99},
	{Label: "100+", MinSize: 100},
}

// RiskReport is the re-identification risk of a table under the prosecutor model: the
// attacker knows that the target is in the dataset and knows the target's
// quasi-identifiers, finds the target's equivalence class and picks one of its records
// at random. A record's prosecutor risk is then 1/size of its class. The report holds
// counts of records and classes only, never a quasi-identifier value.
//
// Shares and risks are fractions in [0, 1]. An empty table gives a report of zeros.
type RiskReport struct {
	// Records is the number of records (people, in the person table).
	Records int64 `json:"records"`
	// Classes is the number of equivalence classes.
	Classes int64 `json:"classes"`
	// Histogram counts classes and their records by class size, in fixed buckets
	// (1, 2, 3-4, 5-9, 10-19, 20-49, 50-99, 100+), empty buckets included.
	Histogram []SizeBucket `json:"histogram"`

	// K is the threshold the report was asked for: a class smaller than k holds records
	// whose prosecutor risk exceeds 1/k (the k of k-anonymity).
	K int `json:"k"`
	// RecordsBelowK is the number of records in classes of fewer than K records, and
	// RecordsBelowKShare their share of Records.
	RecordsBelowK      int64   `json:"records_below_k"`
	RecordsBelowKShare float64 `json:"records_below_k_share"`
	// ClassesBelowK is the number of classes of fewer than K records.
	ClassesBelowK int64 `json:"classes_below_k"`

	// MinClassSize is the size of the smallest class (0 for an empty table).
	MinClassSize int64 `json:"min_class_size"`
	// HighestProsecutorRisk is the risk of the most exposed record: 1/MinClassSize.
	HighestProsecutorRisk float64 `json:"highest_prosecutor_risk"`
	// AverageProsecutorRisk is the mean of 1/size over all records, which is
	// Classes/Records: the expected share of the table an attacker re-identifies if
	// they try every record.
	AverageProsecutorRisk float64 `json:"average_prosecutor_risk"`

	// SampleUniques is the number of records alone in their class (size 1: prosecutor
	// risk 1), and SampleUniquesShare their share of Records. They are unique in this
	// dataset; whether they are unique in the population is a question the prosecutor
	// model does not need to answer.
	SampleUniques      int64   `json:"sample_uniques"`
	SampleUniquesShare float64 `json:"sample_uniques_share"`
}

// Risk computes the report for a class-size histogram and threshold k. Entries need not
// be sorted and may repeat a size (they are added up); entries with a size or class
// count below 1 hold no record and are ignored. With k <= 1 no class is below k.
func Risk(hist []ClassSize, k int) RiskReport {
	r := RiskReport{K: k, Histogram: make([]SizeBucket, len(riskBuckets))}
	copy(r.Histogram, riskBuckets)
	for _, h := range hist {
		if h.Size < 1 || h.Classes < 1 {
			continue
		}
		records := h.Size * h.Classes
		r.Records += records
		r.Classes += h.Classes
		r.Histogram[bucketOf(h.Size)].Classes += h.Classes
		r.Histogram[bucketOf(h.Size)].Records += records
		if h.Size < int64(k) {
			r.RecordsBelowK += records
			r.ClassesBelowK += h.Classes
		}
		if h.Size == 1 {
			r.SampleUniques += records
		}
		if r.MinClassSize == 0 || h.Size < r.MinClassSize {
			r.MinClassSize = h.Size
		}
	}
	if r.Records == 0 {
		return r
	}
	n := float64(r.Records)
	r.RecordsBelowKShare = float64(r.RecordsBelowK) / n
	r.HighestProsecutorRisk = 1 / float64(r.MinClassSize)
	r.AverageProsecutorRisk = float64(r.Classes) / n
	r.SampleUniquesShare = float64(r.SampleUniques) / n
	return r
}

func bucketOf(size int64) int {
	for i, b := range riskBuckets {
		if b.MaxSize == 0 || size <= b.MaxSize {
			return i
		}
	}
	return len(riskBuckets) - 1
}
