package ledger

import "fmt"

// OutputPolicy is statistical disclosure control on top of differential privacy, set per
// project by the DPO (docs/governance.md#output-policy): what a secure processing
// environment's output checkers expect to see applied. It post-processes released values,
// so it costs no budget and adds no guarantee: the guarantee is DP's.
type OutputPolicy struct {
	// SuppressBelow withholds every value of a released row in which a count (COUNT(*),
	// COUNT(x), COUNT(DISTINCT pid)) is below it, after noise; 0: none.
	SuppressBelow float64 `json:"suppress_below,omitempty"`
	// RoundTo rounds released counts to the nearest multiple of it, and widens their
	// intervals outward to multiples of it; 0 or 1: none.
	RoundTo float64 `json:"round_to,omitempty"`
}

// maxPolicyValue bounds both settings: larger ones would withhold or flatten every count a
// health extract can have.
const maxPolicyValue = 1e6

// Empty says the policy changes nothing.
func (p *OutputPolicy) Empty() bool { return p == nil || p.SuppressBelow == 0 && p.RoundTo <= 1 }

// checkOutputPolicy names what is wrong with p.
func checkOutputPolicy(p *OutputPolicy) error {
	if p == nil {
		return nil
	}
	switch {
	case !(p.SuppressBelow >= 0 && p.SuppressBelow <= maxPolicyValue):
		return &FieldError{"output_policy.suppress_below", fmt.Sprintf("%v must be in [0, %g]", p.SuppressBelow, maxPolicyValue)}
	case !(p.RoundTo >= 0 && p.RoundTo <= maxPolicyValue) || p.RoundTo != float64(int64(p.RoundTo)):
		return &FieldError{"output_policy.round_to", fmt.Sprintf("%v must be a whole number in [0, %g]", p.RoundTo, maxPolicyValue)}
	}
	return nil
}

// policyOf checks p's output policy and copies it into d (nil when it changes nothing).
func policyOf(p Project, d *definition) error {
	if err := checkOutputPolicy(p.OutputPolicy); err != nil {
		return err
	}
	if !p.OutputPolicy.Empty() {
		op := *p.OutputPolicy
		d.OutputPolicy = &op
	}
	return nil
}

// policyInto copies d's output policy into p.
func (d *definition) policyInto(p *Project) {
	if d.OutputPolicy != nil {
		op := *d.OutputPolicy
		p.OutputPolicy = &op
	}
}
