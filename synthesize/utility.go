package synthesize

import "fmt"

// MarginalUtility compares the synthetic data with one noisy measurement.
type MarginalUtility struct {
	Attrs []string
	Cells int
	Sigma float64 // the measurement's noise standard deviation (counts)
	// TVD is the total-variation distance between the synthetic rows' marginal and the noisy
	// measurement (negative noisy cells taken as 0, both normalised to sum 1). It includes
	// the measurement's own noise: about √(2/π)·σ·Cells/(2·rows) when the noise dominates.
	TVD float64
}

// UtilityReport is computed from the noisy measurements and the synthetic rows only, so it
// costs no privacy budget (post-processing).
type UtilityReport struct {
	Marginals []MarginalUtility
	MeanTVD   float64
	MaxTVD    float64
}

// Utility reports, for every measured marginal, the total-variation distance between the
// synthetic table (over the source's domain, as Sample returns it) and the measurement (a
// measurement over MST's compressed domain is compared with the synthetic rows folded alike).
func (res *Result) Utility(synth *Table) (UtilityReport, error) {
	var r UtilityReport
	for _, m := range res.Measurements {
		f, err := synth.Marginal(m.Attrs)
		if err != nil {
			return UtilityReport{}, err
		}
		if m.onCompressed {
			if f, err = res.comp.fold(f); err != nil {
				return UtilityReport{}, err
			}
		}
		if len(f.Values) != len(m.Noisy.Values) {
			return UtilityReport{}, fmt.Errorf("synthesize: measurement over %v does not match the synthetic table's domain", synth.Domain.names(m.Attrs))
		}
		u := MarginalUtility{Attrs: synth.Domain.names(m.Attrs), Cells: len(f.Values), Sigma: m.Sigma, TVD: TVD(f.Values, m.Noisy.Values)}
		r.Marginals = append(r.Marginals, u)
		r.MeanTVD += u.TVD
		r.MaxTVD = max(r.MaxTVD, u.TVD)
	}
	if len(r.Marginals) > 0 {
		r.MeanTVD /= float64(len(r.Marginals))
	}
	return r, nil
}
