package pseudonymize_test

import (
	"errors"
	"testing"

	"github.com/velo-fse/velo/pseudonymize"
)

func TestParseIdentifier(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		canonical string
		kind      pseudonymize.IDKind
		omocode   bool
		odd       bool
		err       error
	}{
		{name: "valid", in: "RSSMRA85T10A562S", canonical: "RSSMRA85T10A562S", kind: pseudonymize.KindCodiceFiscale},
		{name: "lower case and spaces", in: " rssmra85t10a562s ", canonical: "RSSMRA85T10A562S", kind: pseudonymize.KindCodiceFiscale},
		{name: "omocode one letter", in: "RSSMRA85T10A56NH", canonical: "RSSMRA85T10A562S", kind: pseudonymize.KindCodiceFiscale, omocode: true},
		{name: "gateway test code is odd but accepted", in: "PROVAX00X00X000Y", canonical: "PROVAX00X00X000Y", kind: pseudonymize.KindCodiceFiscale, odd: true},
		{name: "wrong check letter", in: "RSSMRA85T10A562T", err: pseudonymize.ErrCheckLetter},
		{name: "omocode with stale check letter", in: "RSSMRA85T10A56NS", err: pseudonymize.ErrCheckLetter},
		{name: "stp", in: "STP1200000000001", canonical: "STP1200000000001", kind: pseudonymize.KindSTP},
		{name: "eni", in: "ENI1200000000001", canonical: "ENI1200000000001", kind: pseudonymize.KindENI},
		{name: "temporary", in: "12345678903", canonical: "12345678903", kind: pseudonymize.KindTemporary},
		{name: "temporary bad digit", in: "12345678901", err: pseudonymize.ErrCheckDigit},
		{name: "empty", in: "  ", err: pseudonymize.ErrIdentifierMissing},
		{name: "too short", in: "RSSMRA85T10", err: pseudonymize.ErrIdentifierMalformed},
		{name: "punctuation", in: "RSSMRA85T10A56-S", err: pseudonymize.ErrIdentifierMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := pseudonymize.ParseIdentifier(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Canonical != tt.canonical || id.Kind != tt.kind || id.Omocode != tt.omocode || id.Odd != tt.odd {
				t.Fatalf("got %+v", id)
			}
		})
	}
}

func TestOmocodeVariantsShareCanonicalForm(t *testing.T) {
	const cf = "RSSMRA85T10A562S"
	for n := 1; n <= 7; n++ {
		v, err := pseudonymize.Omocode(cf, n)
		if err != nil {
			t.Fatal(err)
		}
		id, err := pseudonymize.ParseIdentifier(v)
		if err != nil {
			t.Fatalf("variant %d %s: %v", n, v, err)
		}
		if id.Canonical != cf || !id.Omocode {
			t.Fatalf("variant %d: %+v", n, id)
		}
	}
	if v, _ := pseudonymize.Omocode(cf, 1); v != "RSSMRA85T10A56NH" {
		t.Fatalf("first variant %s, want the documented RSSMRA85T10A56NH", v)
	}
}

func TestBirthOf(t *testing.T) {
	id, err := pseudonymize.ParseIdentifier("RSSMRA85T10A562S")
	if err != nil {
		t.Fatal(err)
	}
	b, ok := pseudonymize.BirthOf(id)
	if !ok || b.YY != 85 || b.Month != 12 || b.Day != 10 || b.Female {
		t.Fatalf("got %+v %v", b, ok)
	}
	id, _ = pseudonymize.ParseIdentifier("GTWGWY82B42G920M")
	b, ok = pseudonymize.BirthOf(id)
	if !ok || !b.Female || b.Day != 2 || b.Month != 2 || b.YY != 82 {
		t.Fatalf("got %+v %v", b, ok)
	}
}

func TestParseTEAM(t *testing.T) {
	id, err := pseudonymize.ParseTEAM(" de-1234 5678x ")
	if err != nil || id.Canonical != "TEAM:DE12345678X" || id.Kind != pseudonymize.KindTEAM {
		t.Fatalf("ParseTEAM = %+v, %v", id, err)
	}
	// The canonical form round-trips through ParseIdentifier (opt-out registries list it),
	// and never equals a codice fiscale of the same characters.
	back, err := pseudonymize.ParseIdentifier(id.Canonical)
	if err != nil || back != id {
		t.Fatalf("pseudonymize.ParseIdentifier(%q) = %+v, %v", id.Canonical, back, err)
	}
	cf, _ := pseudonymize.ParseIdentifier("RSSMRA85T10A562S")
	if tm, _ := pseudonymize.ParseTEAM("RSSMRA85T10A562S"); tm.Canonical == cf.Canonical {
		t.Fatal("a TEAM number equals the codice fiscale of the same characters")
	}
	for _, bad := range []string{"", "ABC!", "123456789012345678901"} {
		if _, err := pseudonymize.ParseTEAM(bad); err == nil {
			t.Errorf("pseudonymize.ParseTEAM(%q) accepted", bad)
		}
	}
}

func TestShape(t *testing.T) {
	for in, want := range map[string]string{
		"RSSMRA85T10A562S":                     "A{6}9{2}A9{2}A9{3}A",
		"3f2c5d1e-9abc-4d3e-8f10-2a3b4c5d6e7f": "9a9a9a9a-9a{3}-9a9a-9a9{2}-9a9a9a9a9a9a",
		"STP1701051234567":                     "A{3}9{13}",
		"x@y":                                  "a?a",
	} {
		if pseudonymize.MaskIdentifiers(want) != want {
			t.Errorf("shape %q is itself identifier-shaped", want)
		}
		if got := pseudonymize.Shape(in); got != want {
			t.Errorf("pseudonymize.Shape(%q) = %q, want %q", in, got, want)
		}
	}
}
