package synth

import (
	"testing"
	"time"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
)

// The uniqueness of every synthetic codice fiscale rests on each list's name codes being
// distinct (see person.go).
func TestNameCodesDistinct(t *testing.T) {
	lists := []struct {
		name  string
		names []string
		code  func(string) string
	}{
		{"surnames", surnames[:], surnameCode},
		{"femaleNames", femaleNames[:], givenCode},
		{"maleNames", maleNames[:], givenCode},
		{"foreignSurnames", foreignSurnames[:], surnameCode},
		{"foreignFemaleNames", foreignFemaleNames[:], givenCode},
		{"foreignMaleNames", foreignMaleNames[:], givenCode},
	}
	for _, l := range lists {
		seen := map[string]string{}
		for _, n := range l.names {
			c := l.code(n)
			if other, ok := seen[c]; ok {
				t.Errorf("%s: %q and %q share the code %s", l.name, other, n, c)
			}
			seen[c] = n
		}
	}
	seen := map[string]bool{}
	for _, c := range countries {
		if seen[c.Belfiore] {
			t.Errorf("country code %s listed twice", c.Belfiore)
		}
		seen[c.Belfiore] = true
	}
}

func TestCodiceFiscaleKnownValue(t *testing.T) {
	got := codiceFiscale("Rossi", "Mario", civilDay(1985, 12, 10), false, "A562")
	if got != "RSSMRA85T10A562S" {
		t.Fatalf("codiceFiscale = %s, want RSSMRA85T10A562S", got)
	}
	if _, err := pseudonymize.ParseIdentifier(codiceFiscale("D'Amico", "Anna Maria", civilDay(2001, 2, 28), true, "Z129")); err != nil {
		t.Fatal(err)
	}
}

func TestEveryComuneHasAPostcode(t *testing.T) {
	for _, r := range fse.Regions {
		for _, c := range r.Comuni {
			if pc, ok := postcodes[c.ISTAT]; !ok || pc[1] < 1 {
				t.Errorf("no postcode for %s (%s)", c.Name, c.ISTAT)
			}
		}
		if _, ok := regionWait[r.Code]; !ok {
			t.Errorf("no wait factor for region %s", r.Code)
		}
	}
	for _, s := range fse.Services {
		if _, ok := serviceModels[s.Code]; !ok {
			t.Errorf("no model for service %s", s.Code)
		}
	}
}

func TestPermIsABijection(t *testing.T) {
	for _, mod := range []uint64{1, 7, 1000, 4097} {
		p := newPerm(42, mod)
		seen := make([]bool, mod)
		for x := range mod {
			y := p.apply(x)
			if y >= mod || seen[y] {
				t.Fatalf("mod %d: %d -> %d repeats or is out of range", mod, x, y)
			}
			seen[y] = true
		}
	}
}

func TestCivilDays(t *testing.T) {
	for d := civilDay(1900, 1, 1); d < civilDay(2100, 1, 1); d += 17 {
		y, m, dd := d.civil()
		want := time.Unix(int64(d)*86400, 0).UTC()
		if y != want.Year() || m != int(want.Month()) || dd != want.Day() || civilDay(y, m, dd) != d || d.weekday() != want.Weekday() {
			t.Fatalf("day %d: got %d-%d-%d, want %s", d, y, m, dd, want)
		}
	}
}
