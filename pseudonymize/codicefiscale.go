package pseudonymize

import (
	"errors"
	"fmt"
	"strings"
)

// IDKind tells which kind of personal identifier a value is (docs/domain.md#the-codice-fiscale).
type IDKind int

const (
	KindCodiceFiscale IDKind = iota + 1 // 16-character codice fiscale, omocode variants included
	KindTemporary                       // 11-digit temporary numeric code
	KindSTP                             // STP + 13 digits: foreigner without residence permit
	KindENI                             // ENI + 13 digits: EU citizen without a health card
	KindTEAM                            // personal number of a TEAM (EHIC) card: insured abroad
)

// teamPrefix marks a TEAM number's canonical form, so it never equals a codice fiscale or
// an STP/ENI code that happens to have the same characters.
const teamPrefix = "TEAM:"

func (k IDKind) String() string {
	switch k {
	case KindCodiceFiscale:
		return "codice_fiscale"
	case KindTemporary:
		return "temporary"
	case KindSTP:
		return "stp"
	case KindENI:
		return "eni"
	case KindTEAM:
		return "team"
	}
	return "unknown"
}

// Identifier is a person's identifier as accepted by ingest. Canonical is the form the
// pseudonym is computed from: every omocode variant of one code has the same Canonical.
type Identifier struct {
	Canonical string
	Kind      IDKind
	// Omocode is true when the value as given was an omocode variant.
	Omocode bool
	// Odd is true for a code with a right check letter but an impossible structure (a
	// month letter outside the table, a day out of range, a letter where a digit belongs):
	// a counted data-quality warning, never a reason to reject.
	Odd bool
}

// Errors that make ingest quarantine a record. Their text never contains the value.
var (
	ErrIdentifierMissing   = errors.New("no person identifier")
	ErrIdentifierMalformed = errors.New("identifier is not a codice fiscale, STP/ENI or temporary code")
	ErrCheckLetter         = errors.New("codice fiscale check letter is wrong")
	ErrCheckDigit          = errors.New("temporary code check digit is wrong")
)

// oddValues maps characters at odd (1-based) positions to their check value.
var oddValues = [36]int{ // index: 0-9 then A-Z
	1, 0, 5, 7, 9, 13, 15, 17, 19, 21,
	1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
}

func alnumIndex(ch byte) (int, bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return int(ch - '0'), true
	case ch >= 'A' && ch <= 'Z':
		return int(ch-'A') + 10, true
	}
	return 0, false
}

// CheckLetter computes the codice fiscale check letter over the first 15 characters.
func CheckLetter(first15 string) (byte, error) {
	if len(first15) != 15 {
		return 0, fmt.Errorf("check letter needs 15 characters, got %d", len(first15))
	}
	sum := 0
	for i := 0; i < 15; i++ {
		idx, ok := alnumIndex(first15[i])
		if !ok {
			return 0, ErrIdentifierMalformed
		}
		if i%2 == 0 { // odd position, 1-based
			sum += oddValues[idx]
		} else if idx < 10 {
			sum += idx
		} else {
			sum += idx - 10
		}
	}
	return byte('A' + sum%26), nil
}

// omocodeDigitPositions are the 0-based positions whose digits omocodia replaces by
// letters, right to left.
var omocodeDigitPositions = [7]int{6, 7, 9, 10, 12, 13, 14}

const omocodeLetters = "LMNPQRSTUV" // 0..9

// monthLetters maps the birth month letter to its month (index+1).
const monthLetters = "ABCDEHLMPRST"

// Omocode returns the variant of a valid codice fiscale with its n rightmost digit
// positions turned into letters (1 <= n <= 7) and the check letter recomputed.
func Omocode(cf string, n int) (string, error) {
	if len(cf) != 16 || n < 1 || n > 7 {
		return "", ErrIdentifierMalformed
	}
	b := []byte(cf)
	for i := 0; i < n; i++ {
		pos := omocodeDigitPositions[6-i]
		if d := b[pos]; d >= '0' && d <= '9' {
			b[pos] = omocodeLetters[d-'0']
		}
	}
	ch, err := CheckLetter(string(b[:15]))
	if err != nil {
		return "", err
	}
	b[15] = ch
	return string(b), nil
}

// ParseIdentifier accepts a person identifier by the rules of
// docs/pseudonymization.md#which-identifiers-are-accepted: a codice
// fiscale whose check letter is right for the code as given (omocode variants included),
// an STP or ENI code, or an 11-digit temporary code with a right check digit. Anything
// else is an error, and the record carrying it is quarantined. Errors never quote the value.
func ParseIdentifier(raw string) (Identifier, error) {
	s := strings.ToUpper(strings.TrimSpace(raw))
	switch {
	case s == "":
		return Identifier{}, ErrIdentifierMissing
	case len(s) == 16 && (strings.HasPrefix(s, "STP") || strings.HasPrefix(s, "ENI")) && allDigits(s[3:]):
		kind := KindSTP
		if s[:3] == "ENI" {
			kind = KindENI
		}
		return Identifier{Canonical: s, Kind: kind}, nil
	case len(s) == 11 && allDigits(s):
		if !temporaryCheckDigitOK(s) {
			return Identifier{}, ErrCheckDigit
		}
		return Identifier{Canonical: s, Kind: KindTemporary}, nil
	case strings.HasPrefix(s, teamPrefix):
		return ParseTEAM(s[len(teamPrefix):])
	case len(s) == 16:
		return parseCodiceFiscale(s)
	}
	return Identifier{}, ErrIdentifierMalformed
}

// ErrTEAMMalformed is a TEAM number that is not 1 to 20 letters and digits.
var ErrTEAMMalformed = errors.New("TEAM personal number is not 1 to 20 letters and digits")

// ParseTEAM accepts the personal identification number of a TEAM card (the European
// health insurance card of a person insured abroad), as the HL7 Italia guides carry it
// under its own OIDs: 1 to 20 letters and digits, spaces and dashes ignored. Its format
// is the issuing country's, so no check applies. Only a source that says the value is a
// TEAM number may call it: ParseIdentifier reads a TEAM number only in the canonical form
// (with its prefix) that an opt-out registry lists.
func ParseTEAM(raw string) (Identifier, error) {
	s := strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(raw)))
	if s == "" {
		return Identifier{}, ErrIdentifierMissing
	}
	if len(s) > 20 {
		return Identifier{}, ErrTEAMMalformed
	}
	for i := 0; i < len(s); i++ {
		if _, ok := alnumIndex(s[i]); !ok {
			return Identifier{}, ErrTEAMMalformed
		}
	}
	return Identifier{Canonical: teamPrefix + s, Kind: KindTEAM}, nil
}

// Shape describes a value without revealing it, for reasons that must say what was
// found: letters become A (a when lower case), digits 9, a few separators stay, anything
// else is ?, and a run of one class is written once with its length, so that a shape is
// never itself shaped like an identifier: RSSMRA85T10A562S is A{6}9{2}A9{2}A9{3}A.
// Beyond 60 characters the shape is cut and the value's length added.
func Shape(v string) string {
	class := func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return 'A'
		case r >= 'a' && r <= 'z':
			return 'a'
		case r >= '0' && r <= '9':
			return '9'
		case r == '-' || r == '.' || r == '_' || r == '/' || r == ':' || r == ' ':
			return r
		}
		return '?'
	}
	var b strings.Builder
	rs := []rune(v)
	for i := 0; i < len(rs); {
		c := class(rs[i])
		j := i + 1
		for j < len(rs) && class(rs[j]) == c {
			j++
		}
		b.WriteRune(c)
		if j-i > 1 {
			fmt.Fprintf(&b, "{%d}", j-i)
		}
		i = j
	}
	out := b.String()
	if len(out) > 60 {
		out = fmt.Sprintf("%s... (%d characters)", out[:60], len(rs))
	}
	return out
}

func parseCodiceFiscale(s string) (Identifier, error) {
	for i := 0; i < 16; i++ {
		if _, ok := alnumIndex(s[i]); !ok {
			return Identifier{}, ErrIdentifierMalformed
		}
	}
	want, _ := CheckLetter(s[:15])
	if s[15] != want {
		return Identifier{}, ErrCheckLetter
	}
	id := Identifier{Kind: KindCodiceFiscale}
	b := []byte(s)
	for _, pos := range omocodeDigitPositions {
		if d := strings.IndexByte(omocodeLetters, b[pos]); d >= 0 {
			b[pos] = byte('0' + d)
			id.Omocode = true
		}
	}
	if id.Omocode {
		b[15], _ = CheckLetter(string(b[:15]))
	}
	id.Canonical = string(b)
	id.Odd = !structureOK(id.Canonical)
	return id, nil
}

// structureOK checks the canonical code's shape beyond the check letter: letters for
// surname and name, digits for year and day, a month letter, a day in 1–31 or 41–71, and
// a Belfiore code of one letter and three digits.
func structureOK(cf string) bool {
	for i := 0; i < 6; i++ {
		if !isLetter(cf[i]) {
			return false
		}
	}
	if !allDigits(cf[6:8]) || !allDigits(cf[9:11]) || !allDigits(cf[12:15]) {
		return false
	}
	if strings.IndexByte(monthLetters, cf[8]) < 0 || !isLetter(cf[11]) {
		return false
	}
	day := int(cf[9]-'0')*10 + int(cf[10]-'0')
	return (day >= 1 && day <= 31) || (day >= 41 && day <= 71)
}

// Birth is what a codice fiscale says of its holder: two-digit birth year, month, day
// and sex. ok is false when the code is not a well-formed codice fiscale.
type Birth struct {
	YY, Month, Day int
	Female         bool
}

// BirthOf decodes the birth facts of a canonical codice fiscale, so ingest can count
// disagreements with the record's own sex and birth date.
func BirthOf(id Identifier) (Birth, bool) {
	if id.Kind != KindCodiceFiscale || id.Odd {
		return Birth{}, false
	}
	cf := id.Canonical
	b := Birth{
		YY:    int(cf[6]-'0')*10 + int(cf[7]-'0'),
		Month: strings.IndexByte(monthLetters, cf[8]) + 1,
		Day:   int(cf[9]-'0')*10 + int(cf[10]-'0'),
	}
	if b.Day > 40 {
		b.Day -= 40
		b.Female = true
	}
	return b, true
}

// TemporaryCheckDigit computes the check digit of a 10-digit temporary code prefix (the
// algorithm of the 11-digit numeric codice fiscale).
func TemporaryCheckDigit(first10 string) byte {
	sum := 0
	for i := 0; i < 10; i++ {
		d := int(first10[i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

func temporaryCheckDigitOK(s string) bool { return TemporaryCheckDigit(s[:10]) == s[10] }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func isLetter(ch byte) bool { return ch >= 'A' && ch <= 'Z' }
