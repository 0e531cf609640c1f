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
