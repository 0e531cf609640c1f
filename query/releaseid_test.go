package query

import "testing"

// Release ids read back to the ledger entry they were made from; nothing else reads.
func TestParseReleaseID(t *testing.T) {
	for _, c := range []struct {
		id    string
		seq   uint64
		dummy bool
	}{
		{releaseID(releaseQuery, 12), 12, false},
		{releaseID(releaseMarginals, 1), 1, false},
		{releaseID(releaseSynthetic, 18446744073709551615), 18446744073709551615, false},
		{DummyReleaseID(7), 7, true},
	} {
		seq, dummy, ok := ParseReleaseID(c.id)
		if !ok || seq != c.seq || dummy != c.dummy {
			t.Errorf("%s: %d %v %v, want %d %v", c.id, seq, dummy, ok, c.seq, c.dummy)
		}
	}
	for _, bad := range []string{"", "r_", "r_12", "r_12_abc", "x_12_0123456789ab", "d_12_0123456789ab", "r_12_0123456789AB",
		"r_99999999999999999999_0123456789ab", "d_", " d_1", "r_1_0123456789ab/../x"} {
		if seq, _, ok := ParseReleaseID(bad); ok {
			t.Errorf("%q read as entry %d", bad, seq)
		}
	}
}
