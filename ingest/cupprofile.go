package ingest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/velo-fse/velo/pseudonymize"
)

// CUPProfileFormat is the format line of a CUP CSV profile.
const CUPProfileFormat = "velo-cup-profile/v1"

// CUPProfile is a dialect of CUP booking CSV: how a region's export separates, encodes,
// names and dates what Velo reads (docs/ingest.md, "CUP CSV profiles"). It is read from
// a small YAML file; ingest/profiles/default.yaml is the built-in one.
type CUPProfile struct {
	Format    string              `yaml:"format"`
	Name      string              `yaml:"name"`
	Separator string              `yaml:"separator"` // auto, ",", ";", "\t" or "|"
	Encoding  string              `yaml:"encoding"`  // auto, utf-8, windows-1252 or iso-8859-1
	Dates     []string            `yaml:"dates"`     // patterns, tried in order
	Decimal   string              `yaml:"decimal"`   // "." or ","
	Columns   map[string][]string `yaml:"columns"`   // booking column → header names

	names   map[string]string // normalised header name → booking column
	layouts []string          // Go layouts of Dates
	want    string            // Dates as people read them, for reasons
}

//go:embed profiles/default.yaml
var defaultCUPProfileYAML []byte

// DefaultCUPProfile is the built-in profile.
var DefaultCUPProfile = sync.OnceValue(func() *CUPProfile {
	p, err := ParseCUPProfile(defaultCUPProfileYAML, "built-in profile")
	if err != nil {
		panic(err) // TestDefaultCUPProfile keeps it valid
	}
	return p
})

// LoadCUPProfile reads a profile file.
func LoadCUPProfile(path string) (*CUPProfile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CUP profile: %w", err)
	}
	return ParseCUPProfile(b, path)
}

// datePatterns are the date patterns a profile may name, as Go layouts. Day-first layouts
// take one or two digits.
var datePatterns = map[string]string{
	"YYYY-MM-DD": time.DateOnly,
	"YYYY/MM/DD": "2006/01/02",
	"YYYYMMDD":   "20060102",
	"DD/MM/YYYY": "2/1/2006",
	"DD-MM-YYYY": "2-1-2006",
	"DD.MM.YYYY": "2.1.2006",
}

// ParseCUPProfile decodes and checks a profile; errors name the file and the field.
func ParseCUPProfile(data []byte, name string) (*CUPProfile, error) {
	var p CUPProfile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("CUP profile %s: %w", name, err)
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("CUP profile %s: %s: %s", name, field, fmt.Sprintf(format, args...))
	}
	if p.Format != CUPProfileFormat {
		return nil, bad("format", "%q, want %s", p.Format, CUPProfileFormat)
	}
	if p.Name == "" {
		p.Name = name
	}
	switch p.Separator {
	case "", "auto":
		p.Separator = "auto"
	case ",", ";", "\t", "|":
	default:
		return nil, bad("separator", `%q, want auto, ",", ";", "\t" or "|"`, p.Separator)
	}
	switch strings.ToLower(p.Encoding) {
	case "", "auto":
		p.Encoding = "auto"
	case "utf-8", "utf8":
		p.Encoding = "utf-8"
	case "windows-1252", "cp1252":
		p.Encoding = "windows-1252"
	case "iso-8859-1", "latin1":
		p.Encoding = "iso-8859-1"
	default:
		return nil, bad("encoding", "%q, want auto, utf-8, windows-1252 or iso-8859-1", p.Encoding)
	}
	switch p.Decimal {
	case "":
		p.Decimal = "."
	case ".", ",":
	default:
		return nil, bad("decimal", `%q, want "." or ","`, p.Decimal)
	}
	if p.Decimal == "," && p.Separator == "," {
		return nil, bad("decimal", `"," is also the separator`)
	}
	if len(p.Dates) == 0 {
		p.Dates = []string{"YYYY-MM-DD"}
	}
	for _, d := range p.Dates {
		layout, ok := datePatterns[d]
		if !ok {
			return nil, bad("dates", "%q, want one of YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY, YYYYMMDD, YYYY/MM/DD", d)
		}
		p.layouts = append(p.layouts, layout)
	}
	p.want = strings.Join(p.Dates, " or ")
	p.names = map[string]string{}
	for _, c := range bookingColumns {
		p.names[c] = c
	}
	for col, names := range p.Columns {
		if !slices.Contains(bookingColumns, col) {
			return nil, bad("columns", "%q is not a booking column (%s)", col, strings.Join(bookingColumns, ", "))
		}
		for _, n := range names {
			key := normalizeHeader(n)
			if other, ok := p.names[key]; ok && other != col {
				return nil, bad("columns", "the header name %q stands for both %s and %s", n, other, col)
			}
			p.names[key] = col
		}
	}
	return &p, nil
}

// normalizeHeader is a header name as profiles match it: lower case, accents dropped,
// runs of anything but letters and digits one underscore.
func normalizeHeader(s string) string {
	s = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(s, "\ufeff")))
	var b strings.Builder
	under := false
	for _, r := range s {
		switch r {
		case 'à', 'á', 'â':
			r = 'a'
		case 'è', 'é', 'ê':
			r = 'e'
		case 'ì', 'í', 'î':
			r = 'i'
		case 'ò', 'ó', 'ô':
			r = 'o'
		case 'ù', 'ú', 'û':
			r = 'u'
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

// cupDialect is how one file is read: its separator and encoding, as the profile
// declares them or as its header line shows them.
type cupDialect struct {
	sep rune
	enc string
}

func (d cupDialect) String() string {
	sep := map[rune]string{',': "comma", ';': "semicolon", '\t': "tab", '|': "vertical bar"}[d.sep]
	return fmt.Sprintf("separator %s, encoding %s", sep, d.enc)
}

// dialect finds a file's dialect from its first bytes.
func (p *CUPProfile) dialect(head []byte) cupDialect {
	line, _, _ := bytes.Cut(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), []byte("\n"))
	d := cupDialect{enc: p.Encoding}
	if d.enc == "auto" {
		d.enc = "utf-8"
		if !utf8.Valid(line) {
			d.enc = "windows-1252"
		}
	}
	if p.Separator != "auto" {
		d.sep = rune(p.Separator[0])
		return d
	}
	// The candidate that splits the header (outside quotes) into the most columns.
	counts := map[byte]int{}
	quoted := false
	for _, c := range line {
		switch c {
		case '"':
			quoted = !quoted
		case ',', ';', '\t', '|':
			if !quoted {
				counts[c]++
			}
		}
	}
	d.sep = ','
	for _, c := range []byte{';', '\t', '|'} {
		if counts[c] > counts[byte(d.sep)] {
			d.sep = rune(c)
		}
	}
	return d
}

// decode returns r decoded to UTF-8, without a byte-order mark.
func (d cupDialect) decode(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if d.enc != "utf-8" {
		dr, _ := cdaCharsetReader(d.enc, br)
		return dr
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	return br
}

// header reads a file's header line as CSV of its dialect (nil when it is not valid
// CSV; lazy reads quotes as text, to tell what such a line meant).
func (d cupDialect) header(line []byte, lazy bool) []string {
	cr := csv.NewReader(d.decode(bytes.NewReader(line)))
	cr.Comma = d.sep
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = lazy
	h, err := cr.Read()
	if err != nil && !lazy {
		return nil
	}
	return h
}

// mapHeader finds the position of each booking column in a header; missing are the
// columns no header name stands for, unknown the header names that stand for none.
func (p *CUPProfile) mapHeader(header []string) (col map[string]int, missing, unknown []string) {
	col = map[string]int{}
	for i, h := range header {
		c, ok := p.names[normalizeHeader(h)]
		if !ok {
			unknown = append(unknown, h)
			continue
		}
		col[c] = i // a column named twice: the later one is read, as it always was
	}
	for _, c := range bookingColumns {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	return col, missing, unknown
}

// minBookingColumns is how many booking columns a header must name for its file to be
// taken for a CUP extract; one that names fewer is some other table, skipped.
const minBookingColumns = 3

// looksLikeBookings tells whether a file's first bytes are the header of a CUP extract
// in this profile (it may still lack columns: reading it then fails, naming them).
func (p *CUPProfile) looksLikeBookings(head []byte) bool {
	d := p.dialect(head)
	line, _, _ := bytes.Cut(head, []byte("\n"))
	col, _, _ := p.mapHeader(d.header(line, false))
	return len(col) >= minBookingColumns
}

// skipHint says why a delimited file that is not taken for a CUP extract was skipped,
// or "" when it does not look delimited at all.
func (p *CUPProfile) skipHint(head []byte) string {
	d := p.dialect(head)
	line, _, _ := bytes.Cut(head, []byte("\n"))
	if col, _, _ := p.mapHeader(d.header(line, true)); len(col) >= minBookingColumns {
		return fmt.Sprintf("a CUP extract's header line that is not valid CSV (%s; a stray quote?)", d)
	}
	h := d.header(line, false)
	if len(h) < 4 {
		return ""
	}
	return fmt.Sprintf("delimited text (%s, %d columns) whose header names fewer than %d CUP booking columns (profile %s): if it is a CUP extract, map its header with --cup-profile",
		d, len(h), minBookingColumns, p.Name)
}

// headerError is a CUP extract whose header does not map to every booking column.
func (p *CUPProfile) headerError(d cupDialect, missing, unknown []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "CSV header (%s, profile %s): no column %s", d, p.Name, strings.Join(missing, ", "))
	if len(unknown) > 0 {
		names := make([]string, 0, len(unknown))
		for _, u := range unknown {
			u = pseudonymize.MaskIdentifiers(u)
			if len(u) > 40 {
				u = u[:40] + "..."
			}
			names = append(names, fmt.Sprintf("%q", u))
		}
		if len(names) > 20 {
			names = append(names[:20], "...")
		}
		fmt.Fprintf(&b, "; header names matched to none: %s", strings.Join(names, ", "))
	}
	b.WriteString(" (map them with --cup-profile)")
	return errors.New(b.String())
}

// parseDate reads a date in one of the profile's patterns; a time of day after it is
// dropped.
func (p *CUPProfile) parseDate(s string) (time.Time, bool) {
	// The date part of a date-time: up to the first space or T (strings.IndexAny, whose
	// character set is built again at every call, took 2% of a CSV ingest's CPU).
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == 'T' {
			if i > 0 {
				s = s[:i]
			}
			break
		}
	}
	for _, l := range p.layouts {
		if l == time.DateOnly {
			if t, ok := parseISODate(s); ok {
				return t, true
			}
		}
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseISODate reads YYYY-MM-DD as time.Parse(time.DateOnly, s) does, without its
// general layout machinery (a date is parsed three times per booking). It accepts only
// what time.Parse accepts, with the same result; anything else is left to time.Parse.
func parseISODate(s string) (time.Time, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	num := func(b string) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(s[:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // past the month's end: time.Parse refuses it
		return time.Time{}, false
	}
	return t, true
}

// serviceCode undoes a spreadsheet's number formatting of a nomenclatore code (89,13 for
// 89.13) when the export's decimal separator is a comma.
func (p *CUPProfile) serviceCode(s string) string {
	if p.Decimal != "," {
		return s
	}
	i := strings.IndexByte(s, ',')
	if i <= 0 || i == len(s)-1 || strings.Trim(s[:i]+s[i+1:], "0123456789") != "" {
		return s
	}
	return s[:i] + "." + s[i+1:]
}
