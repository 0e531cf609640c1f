package query

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/velo-fse/velo/dp"

	"github.com/velo-fse/velo/ledger"
)

// A key's public domain is the set of its values as DuckDB groups them: CASE results 1
// and 1.0 are one group, so it is released once, with the epsilon it was charged — never
// as several rows each noised with the full epsilon (the averaging attack of issue 10).
func TestDuplicateDomainValuesReleasedOnce(t *testing.T) {
	data := twoRegions(t)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 1e6, Delta: 1e-4}, nil)
	tests := []struct {
		name, sql string
		rows      int
	}{
		{"two keys, 1 and 1.0", "SELECT CASE WHEN region='030' THEN 1 ELSE 1.0 END AS k1, CASE WHEN region='120' THEN 1 ELSE 1.0 END AS k2, count(*) AS n FROM booking GROUP BY k1, k2", 1},
		{"four keys, 1 and 1.0", "SELECT CASE WHEN wait_days < 5 THEN 1 ELSE 1.0 END AS k1, CASE WHEN wait_days < 10 THEN 1 ELSE 1.0 END AS k2, " +
			"CASE WHEN wait_days < 15 THEN 1 ELSE 1.0 END AS k3, CASE WHEN region = '030' THEN 1 ELSE 1.0 END AS k4, count(*) AS n FROM booking GROUP BY k1, k2, k3, k4", 1},
		{"1, 1.0 and 2", "SELECT CASE WHEN region='030' THEN 1 WHEN wait_days > 10 THEN 2 ELSE 1.00 END AS k, count(*) AS n FROM booking GROUP BY k", 2},
		{"same string twice", "SELECT CASE WHEN region='030' THEN 'a' ELSE 'a' END AS k, count(*) AS n FROM booking GROUP BY k", 1},
		{"2.50 and 2.5", "SELECT CASE WHEN region='030' THEN 2.50 ELSE 2.5 END AS k, count(*) AS n FROM booking GROUP BY k", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := eng.Query(context.Background(), Request{SQL: tt.sql, Project: "wl", Actor: "user:test", Epsilon: f64(1000)})
			if err != nil {
				t.Fatal(err)
			}
			if len(rel.Rows) != tt.rows {
				t.Fatalf("%d rows %v, want %d: a group is released more than once", len(rel.Rows), rel.Rows, tt.rows)
			}
			seen := map[string]bool{}
			total := 0.0
			for _, row := range rel.Rows {
				key := fmt.Sprint(row[:len(row)-1])
				if seen[key] {
					t.Fatalf("key tuple %s released twice", key)
				}
				seen[key] = true
				total += row[len(row)-1].(float64)
			}
			// Every booking is in exactly one group: at epsilon 1000 the noise is ~0.001.
			if total < 399 || total > 401 {
				t.Errorf("released counts sum to %v, want 400 (each booking in one released group)", total)
			}
		})
	}
}

// The release builder refuses a key list with a repeated tuple, whatever produced it.
func TestReleaseKeysRefusesRepeatedTuples(t *testing.T) {
	p := &plan{Keys: []key{{Name: "k", Domain: &keyDomain{Values: []any{int64(1), 1.0}}}}}
	if _, _, err := releaseKeys(p, rewritten{MaxGroups: 1}, [][]any{{int64(1), int64(1)}}, nil, dp.Budget{}, dp.Budget{}, Confidence); !errors.Is(err, errDuplicateGroup) {
		t.Fatalf("releaseKeys with a repeated domain value: %v, want errDuplicateGroup", err)
	}
	if keys, _, err := releaseKeys(p, rewritten{MaxGroups: 1}, [][]any{{int64(1), int64(2)}}, nil, dp.Budget{}, dp.Budget{}, Confidence); err != nil || len(keys) != 2 {
		t.Fatalf("releaseKeys with distinct values: %v, %v", keys, err)
	}
}
