package main

import (
	"strings"
	"testing"
)

// The synth bar counts people, the ingest bar bytes; neither calls them records.
func TestProgressUnits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bar   func(m *Main) (func(int64), func())
		total int64
		want  []string
	}{
		{"synth", func(m *Main) (func(int64), func()) { return m.progress("synth", 1000) }, 1000, []string{"synth", "250/1000", "people/s"}},
		{"ingest", func(m *Main) (func(int64), func()) { return m.progressBytes("ingest", 64<<20) }, 64 << 20, []string{"ingest", "17/67 MB", "B/s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			update, done := tc.bar(&Main{Stderr: &out, Interactive: true})
			update(tc.total / 4)
			shown := out.String()
			done()
			for _, want := range tc.want {
				if !strings.Contains(shown, want) {
					t.Errorf("the bar shows %q, without %q", shown, want)
				}
			}
			if strings.Contains(shown, "rec") {
				t.Errorf("the bar counts records: %q", shown)
			}
		})
	}
	var out strings.Builder
	update, done := (&Main{Stderr: &out}).progress("synth", 10)
	update(5)
	done()
	if out.Len() != 0 {
		t.Errorf("a bar off a terminal: %q", out.String())
	}
}
