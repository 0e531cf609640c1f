package ingest

import (
	"fmt"
	"testing"
	"time"
)

// TestParseISODate: the fast path accepts exactly what time.Parse(time.DateOnly, ·)
// accepts, with the same time, over every day of a leap and a common year, the days past
// each month's end, and malformed strings.
func TestParseISODate(t *testing.T) {
	var inputs []string
	for _, y := range []int{0, 1900, 2000, 2023, 2024, 9999} {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				inputs = append(inputs, fmt.Sprintf("%04d-%02d-%02d", y, m, d))
			}
		}
	}
	inputs = append(inputs, "", "2024-1-05", "2024-01-5", "2024/01/05", "2024-01-05 ", " 2024-01-05",
		"2024-0a-05", "20240105", "+024-01-05", "-024-01-05", "2024-01-0\x00", "２０２４-01-05", "2024--1-05")
	accepted := 0
	for _, s := range inputs {
		want, err := time.Parse(time.DateOnly, s)
		got, ok := parseISODate(s)
		if ok != (err == nil) || ok && !got.Equal(want) || ok && got.Location() != want.Location() {
			t.Errorf("%q: fast path %v %v, time.Parse %v %v", s, got, ok, want, err)
		}
		if ok {
			accepted++
		}
	}
	if accepted != 366+365+366+365+366+365 { // years 0, 2000 and 2024 are leap years
		t.Errorf("%d dates accepted", accepted)
	}
}

// TestParseDateCutsTheTime: a date-time's date is the text before its first space or T, as
// strings.IndexAny(s, " T") found it; a string starting with either is not cut.
func TestParseDateCutsTheTime(t *testing.T) {
	p := DefaultCUPProfile()
	for _, tc := range []struct {
		in   string
		want string // "": refused
	}{
		{"2024-03-05", "2024-03-05"},
		{"2024-03-05T10:00:00", "2024-03-05"},
		{"2024-03-05 10:00", "2024-03-05"},
		{"2024-03-05 T10", "2024-03-05"},
		{"2024-03-05T 10", "2024-03-05"},
		{"T2024-03-05", ""},
		{" 2024-03-05", ""},
		{"2024-03-05X10", ""},
		{"", ""},
		{"T", ""},
	} {
		got, ok := p.parseDate(tc.in)
		switch {
		case tc.want == "" && ok:
			t.Errorf("%q: accepted as %v", tc.in, got)
		case tc.want != "" && (!ok || got.Format(time.DateOnly) != tc.want):
			t.Errorf("%q: %v %v, want %s", tc.in, got, ok, tc.want)
		}
	}
}
