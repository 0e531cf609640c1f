package fse

import (
	"fmt"
	"strings"
	"time"
)

// Period is the extract's declared period (inclusive days). It makes date keys public
// (docs/privacy.md#groups-public-domains-and-partition-selection) and rows dated outside it
// are counted and left out (docs/ingest.md#period).
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Contains reports whether the day d falls in the period.
func (p *Period) Contains(d time.Time) bool { return !d.Before(p.From) && !d.After(p.To) }

// String renders the period as FROM..TO with days.
func (p *Period) String() string {
	return p.From.Format(time.DateOnly) + ".." + p.To.Format(time.DateOnly)
}

// ParsePeriod parses FROM..TO where each end is YYYY-MM (FROM: the month's first day,
// TO: its last day) or YYYY-MM-DD.
func ParsePeriod(s string) (*Period, error) {
	from, to, ok := strings.Cut(s, "..")
	if !ok {
		return nil, fmt.Errorf("period %q: want FROM..TO, e.g. 2024-01..2025-12", s)
	}
	f, err := parsePeriodEnd(from, false)
	if err != nil {
		return nil, fmt.Errorf("period %q: start: %w", s, err)
	}
	t, err := parsePeriodEnd(to, true)
	if err != nil {
		return nil, fmt.Errorf("period %q: end: %w", s, err)
	}
	if t.Before(f) {
		return nil, fmt.Errorf("period %q: ends before it starts", s)
	}
	return &Period{From: f, To: t}, nil
}

func parsePeriodEnd(s string, end bool) (time.Time, error) {
	switch len(s) {
	case 7:
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return time.Time{}, fmt.Errorf("want YYYY-MM or YYYY-MM-DD")
		}
		if end {
			t = t.AddDate(0, 1, -1)
		}
		return t, nil
	case 10:
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("want YYYY-MM or YYYY-MM-DD")
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want YYYY-MM or YYYY-MM-DD")
}
