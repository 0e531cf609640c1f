package pseudonymize_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/pseudonymize"
)

// buckets returns the report's eight buckets with the given classes and records, in
// bucket order (1, 2, 3-4, 5-9, 10-19, 20-49, 50-99, 100+).
func buckets(classes, records [8]int64) []pseudonymize.SizeBucket {
	b := []pseudonymize.SizeBucket{
		{Label: "1", MinSize: 1, MaxSize: 1},
		{Label: "2", MinSize: 2, MaxSize: 2},
		{Label: "3-4", MinSize: 3, MaxSize: 4},
		{Label: "5-9", MinSize: 5, MaxSize: 9},
		{Label: "10-19", MinSize: 10, MaxSize: 19},
		{Label: "20-49", MinSize: 20, MaxSize: 49},
		{Label: "50-99", MinSize: 50, MaxSize: 99},
		{Label: "100+", MinSize: 100},
	}
	for i := range b {
		b[i].Classes, b[i].Records = classes[i], records[i]
	}
	return b
}

func TestRisk(t *testing.T) {
	tests := []struct {
		name string
		hist []pseudonymize.ClassSize
		k    int
		want pseudonymize.RiskReport
	}{
		{
			// 10 uniques, 5 pairs, 2 classes of 4, 1 of 5, 3 of 12, 1 of 250:
			// 10 + 10 + 8 + 5 + 36 + 250 = 319 records in 22 classes.
			name: "known histogram",
			hist: []pseudonymize.ClassSize{
				{Size: 1, Classes: 10}, {Size: 2, Classes: 5}, {Size: 4, Classes: 2},
				{Size: 5, Classes: 1}, {Size: 12, Classes: 3}, {Size: 250, Classes: 1},
			},
			k: 5,
			want: pseudonymize.RiskReport{
				Records: 319, Classes: 22,
				Histogram: buckets([8]int64{10, 5, 2, 1, 3, 0, 0, 1}, [8]int64{10, 10, 8, 5, 36, 0, 0, 250}),
				K:         5, RecordsBelowK: 28, RecordsBelowKShare: 28.0 / 319, ClassesBelowK: 17,
				MinClassSize: 1, HighestProsecutorRisk: 1, AverageProsecutorRisk: 22.0 / 319,
				SampleUniques: 10, SampleUniquesShare: 10.0 / 319,
			},
		},
		{
			name: "unsorted and repeated sizes add up, empty entries ignored",
			hist: []pseudonymize.ClassSize{
				{Size: 3, Classes: 1}, {Size: 20, Classes: 1}, {Size: 3, Classes: 2},
				{Size: 7, Classes: 0}, {Size: 0, Classes: 4},
			},
			k: 5,
			want: pseudonymize.RiskReport{
				Records: 29, Classes: 4,
				Histogram: buckets([8]int64{0, 0, 3, 0, 0, 1, 0, 0}, [8]int64{0, 0, 9, 0, 0, 20, 0, 0}),
				K:         5, RecordsBelowK: 9, RecordsBelowKShare: 9.0 / 29, ClassesBelowK: 3,
				MinClassSize: 3, HighestProsecutorRisk: 1.0 / 3, AverageProsecutorRisk: 4.0 / 29,
			},
		},
		{
			name: "empty",
			hist: nil,
			k:    5,
			want: pseudonymize.RiskReport{Histogram: buckets([8]int64{}, [8]int64{}), K: 5},
		},
		{
			name: "all unique",
			hist: []pseudonymize.ClassSize{{Size: 1, Classes: 40}},
			k:    2,
			want: pseudonymize.RiskReport{
				Records: 40, Classes: 40,
				Histogram: buckets([8]int64{40}, [8]int64{40}),
				K:         2, RecordsBelowK: 40, RecordsBelowKShare: 1, ClassesBelowK: 40,
				MinClassSize: 1, HighestProsecutorRisk: 1, AverageProsecutorRisk: 1,
				SampleUniques: 40, SampleUniquesShare: 1,
			},
		},
		{
			name: "a class of exactly k is not below k",
			hist: []pseudonymize.ClassSize{{Size: 4, Classes: 1}, {Size: 5, Classes: 2}, {Size: 6, Classes: 1}},
			k:    5,
			want: pseudonymize.RiskReport{
				Records: 20, Classes: 4,
				Histogram: buckets([8]int64{0, 0, 1, 3}, [8]int64{0, 0, 4, 16}),
				K:         5, RecordsBelowK: 4, RecordsBelowKShare: 0.2, ClassesBelowK: 1,
				MinClassSize: 4, HighestProsecutorRisk: 0.25, AverageProsecutorRisk: 0.2,
			},
		},
		{
			name: "raising k to 6 takes the classes of 5 below it",
			hist: []pseudonymize.ClassSize{{Size: 4, Classes: 1}, {Size: 5, Classes: 2}, {Size: 6, Classes: 1}},
			k:    6,
			want: pseudonymize.RiskReport{
				Records: 20, Classes: 4,
				Histogram: buckets([8]int64{0, 0, 1, 3}, [8]int64{0, 0, 4, 16}),
				K:         6, RecordsBelowK: 14, RecordsBelowKShare: 0.7, ClassesBelowK: 3,
				MinClassSize: 4, HighestProsecutorRisk: 0.25, AverageProsecutorRisk: 0.2,
			},
		},
		{
			name: "k of 1 puts no class below it",
			hist: []pseudonymize.ClassSize{{Size: 1, Classes: 3}, {Size: 100, Classes: 1}, {Size: 99, Classes: 1}},
			k:    1,
			want: pseudonymize.RiskReport{
				Records: 202, Classes: 5,
				Histogram: buckets([8]int64{3, 0, 0, 0, 0, 0, 1, 1}, [8]int64{3, 0, 0, 0, 0, 0, 99, 100}),
				K:         1, MinClassSize: 1, HighestProsecutorRisk: 1, AverageProsecutorRisk: 5.0 / 202,
				SampleUniques: 3, SampleUniquesShare: 3.0 / 202,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pseudonymize.Risk(tt.hist, tt.k)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Risk() mismatch (-want +got):\n%s", diff)
			}
			for name, v := range map[string]float64{
				"records_below_k_share": got.RecordsBelowKShare, "highest": got.HighestProsecutorRisk,
				"average": got.AverageProsecutorRisk, "sample_uniques_share": got.SampleUniquesShare,
			} {
				if math.IsNaN(v) || v < 0 || v > 1 {
					t.Errorf("%s = %v, want a fraction in [0, 1]", name, v)
				}
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("report does not marshal: %v", err)
			}
		})
	}
}

func TestRiskJSONNames(t *testing.T) {
	b, err := json.Marshal(pseudonymize.Risk([]pseudonymize.ClassSize{{Size: 1, Classes: 1}, {Size: 150, Classes: 1}}, 5))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"records", "classes", "histogram", "k", "records_below_k", "records_below_k_share", "classes_below_k",
		"min_class_size", "highest_prosecutor_risk", "average_prosecutor_risk", "sample_uniques", "sample_uniques_share",
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("report JSON lacks %q: %s", k, b)
		}
	}
	last := got["histogram"].([]any)[7].(map[string]any)
	if _, ok := last["max_size"]; ok || last["size"] != "100+" || last["records"] != 150.0 {
		t.Errorf("open bucket = %v, want size 100+ with no max_size and 150 records", last)
	}
}
