package fse_test

import (
	"testing"
	"time"

	"github.com/velo-fse/velo/fse"
)

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in       string
		from, to time.Time
		err      bool
	}{
		{in: "2024-01..2025-12", from: fse.Date(2024, 1, 1), to: fse.Date(2025, 12, 31)},
		{in: "2024-02..2024-02", from: fse.Date(2024, 2, 1), to: fse.Date(2024, 2, 29)},
		{in: "2024-03-15..2024-06-30", from: fse.Date(2024, 3, 15), to: fse.Date(2024, 6, 30)},
		{in: "2024-03-15..2024-06", from: fse.Date(2024, 3, 15), to: fse.Date(2024, 6, 30)},
		{in: "2024-01", err: true},
		{in: "2024-13..2025-01", err: true},
		{in: "2025-01..2024-12", err: true},
		{in: "01/2024..12/2025", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := fse.ParsePeriod(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !tt.err && (!p.From.Equal(tt.from) || !p.To.Equal(tt.to)) {
				t.Fatalf("got %s, want %s..%s", p, tt.from, tt.to)
			}
		})
	}
}
