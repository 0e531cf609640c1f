package query

import (
	"strconv"
	"testing"
)

// TestMemoBounded: the memo never holds more than max entries or maxBytes of declared
// cost, never stores an entry costing more than a quarter of maxBytes, and answers what it
// holds.
func TestMemoBounded(t *testing.T) {
	m := memo[int]{max: 10, maxBytes: 1000}
	for i := range 1000 {
		k := strconv.Itoa(i)
		m.put(k, i, 1+i%200)
		if len(m.m) > m.max || m.bytes > m.maxBytes {
			t.Fatalf("after %d puts: %d entries, %d bytes", i+1, len(m.m), m.bytes)
		}
		if v, ok := m.get(k); ok != (1+i%200 <= 250) || ok && v != i {
			t.Fatalf("get(%s) = %d, %v right after its put", k, v, ok)
		}
	}
	m.put("big", 1, 251)
	if _, ok := m.get("big"); ok {
		t.Error("an entry costing more than a quarter of the memo was stored")
	}
}
