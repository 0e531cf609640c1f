package pseudonymize

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// OptOut is the registry of people who opted out of secondary use (EHDS Art. 71). It
// holds canonical identifiers, so every omocode variant of a listed code matches.
type OptOut struct {
	ids map[string]struct{}
}

// ReadOptOut parses one identifier per line; blank lines and lines starting with # are
// ignored. A line that is not an acceptable identifier is an error naming the line: an
// opt-out that cannot be honoured must stop the ingest rather than be skipped.
func ReadOptOut(r io.Reader, name string) (*OptOut, error) {
	o := &OptOut{ids: map[string]struct{}{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		id, err := ParseIdentifier(s)
		if err != nil {
			return nil, fmt.Errorf("opt-out registry %s line %d: %w", MaskIdentifiers(name), line, err)
		}
		o.ids[id.Canonical] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("opt-out registry %s: %w", MaskIdentifiers(name), err)
	}
	return o, nil
}

// Contains reports whether the person opted out. A nil registry contains nobody.
func (o *OptOut) Contains(id Identifier) bool {
	if o == nil {
		return false
	}
	_, ok := o.ids[id.Canonical]
	return ok
}

// Identifiers returns the registry's canonical identifiers, sorted.
func (o *OptOut) Identifiers() []Identifier {
	if o == nil {
		return nil
	}
	out := make([]Identifier, 0, len(o.ids))
	for s := range o.ids {
		id, _ := ParseIdentifier(s)
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b Identifier) int { return strings.Compare(a.Canonical, b.Canonical) })
	return out
}

// Len is the number of distinct people in the registry.
func (o *OptOut) Len() int {
	if o == nil {
		return 0
	}
	return len(o.ids)
}

// identifierShaped matches what could be a codice fiscale (omocode letters included), an
// STP/ENI code, or a long digit run (temporary codes, NRE numbers, phone numbers).
var identifierShaped = regexp.MustCompile(`(?i)[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]|(?i:STP|ENI)[0-9]{13}|[0-9]{8,}`)

// MaskIdentifiers replaces identifier-shaped substrings with asterisks, for file paths
// and other operator-supplied text that ends up in manifests, quarantine and errors.
func MaskIdentifiers(s string) string {
	return identifierShaped.ReplaceAllStringFunc(s, func(m string) string { return strings.Repeat("*", len(m)) })
}
