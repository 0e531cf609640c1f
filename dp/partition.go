package dp

import (
	"fmt"

	"github.com/google/differential-privacy/go/v3/dpagg"
)

// KeepPartition decides whether a group whose key is not from a public domain may be released.
// persons is the number of distinct persons in the group, each of whom is in at most maxGroups
// groups. The decision is dpagg.PreAggSelectPartition's: for maxGroups ≤ 3 the optimal
// randomized rule of Desfontaines et al. (2020), which keeps a group with n persons with a
// probability rising from δ/maxGroups at n = 1 to 1 at a hard threshold; for maxGroups > 3 a
// Gaussian-noised count of persons against a threshold (δ split between noise and threshold).
// It is (ε, δ)-DP with ε, δ = b, and needs δ > 0. persons is never checked, so the error cannot
// depend on the data; persons ≤ 0 is never kept.
func KeepPartition(persons int64, maxGroups int64, b Budget) (bool, error) {
	if err := b.Validate(); err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	if b.Delta == 0 {
		return false, fmt.Errorf("dp.KeepPartition: %w", argErr("delta", "is 0, partition selection needs delta > 0"))
	}
	if maxGroups < 1 {
		return false, fmt.Errorf("dp.KeepPartition: %w", argErr("maxGroups", "is %d, must be >= 1", maxGroups))
	}
	s, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
		Epsilon:                  b.Epsilon,
		Delta:                    b.Delta,
		MaxPartitionsContributed: maxGroups,
	})
	if err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	if err := s.IncrementBy(persons); err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	keep, err := s.ShouldKeepPartition()
	if err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	return keep, nil
}
