package query

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// liftDPClause removes the ZetaSQL/BigQuery clause `SELECT WITH DIFFERENTIAL_PRIVACY
// OPTIONS(name = value, ...)` that DuckDB cannot parse. The clause's bytes are replaced
// by spaces, so every position DuckDB reports in the rest of the text is the position in
// the user's own text. It returns the options found (names lower-cased) and the clause's
// position, or -1.
func liftDPClause(sql string) (out string, opts map[string]string, at int, err error) {
	toks := lex(sql)
	// Find the first SELECT outside parentheses (the statement's own).
	for i := 0; i < len(toks); i++ {
		if !toks[i].is("SELECT") {
			continue
		}
		if i+3 >= len(toks) || !toks[i+1].is("WITH") || !toks[i+2].is("DIFFERENTIAL_PRIVACY") {
			return sql, nil, -1, nil
		}
		start := toks[i+1].pos
		j := i + 3
		opts = map[string]string{}
		end := toks[i+2].end
		if j < len(toks) && toks[j].is("OPTIONS") {
			if j+1 >= len(toks) || toks[j+1].text != "(" {
				return "", nil, toks[j].pos, fmt.Errorf("OPTIONS must be followed by (name = value, ...)")
			}
			k := j + 2
			for {
				if k >= len(toks) {
					return "", nil, toks[j].pos, fmt.Errorf("OPTIONS( is not closed")
				}
				if toks[k].text == ")" {
					end = toks[k].end
					break
				}
				if k+2 >= len(toks) || toks[k].kind != tokWord || (toks[k+1].text != "=" && toks[k+1].text != "=>") {
					return "", nil, toks[k].pos, fmt.Errorf("OPTIONS entries are name = value")
				}
				name := strings.ToLower(toks[k].text)
				val := toks[k+2]
				if val.kind != tokNumber && val.kind != tokWord && val.kind != tokString {
					return "", nil, val.pos, fmt.Errorf("option %s: value must be a number or a word", name)
				}
				if _, dup := opts[name]; dup {
					return "", nil, toks[k].pos, fmt.Errorf("option %s given twice", name)
				}
				opts[name] = strings.Trim(val.text, "'")
				k += 3
				if k < len(toks) && toks[k].text == "," {
					k++
				}
			}
		}
		b := []byte(sql)
		for p := start; p < end; p++ {
			if b[p] != '\n' {
				b[p] = ' '
			}
		}
		return string(b), opts, start, nil
	}
	return sql, nil, -1, nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokNumber
	tokString
	tokSymbol
)

type token struct {
	kind     tokKind
	text     string
	pos, end int
}

func (t token) is(word string) bool { return t.kind == tokWord && strings.EqualFold(t.text, word) }

// lex splits SQL into words, numbers, strings and symbols, skipping comments. It is only
// used to find the DP clause; DuckDB's own parser reads everything else.
func lex(s string) []token {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				i = len(s)
			} else {
				i += j + 4
			}
		case unicode.IsSpace(rune(c)):
			i++
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(s) {
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(s))
			kind := tokString
			if c == '"' {
				kind = tokWord
			}
			out = append(out, token{kind, s[i:end], i, end})
			i = end
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 0x80 || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, token{tokWord, s[i:j], i, j})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '-' || s[j] == '+') && j > i && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			out = append(out, token{tokNumber, s[i:j], i, j})
			i = j
		case c == '=' && i+1 < len(s) && s[i+1] == '>':
			out = append(out, token{tokSymbol, "=>", i, i + 2})
			i += 2
		default:
			out = append(out, token{tokSymbol, string(c), i, i + 1})
			i++
		}
	}
	return out
}

// parseFloatOption reads a numeric option.
var decimalNumber = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$|^[-+]?\.[0-9]+([eE][-+]?[0-9]+)?$`)

func parseFloatOption(opts map[string]string, name string) (*float64, error) {
	s, ok := opts[name]
	if !ok {
		return nil, nil
	}
	// Plain decimal numbers only: no NaN, Inf, hexadecimal floats or digit separators,
	// which strconv would accept.
	if !decimalNumber.MatchString(s) {
		return nil, fmt.Errorf("option %s: %q is not a decimal number", name, s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("option %s: %q is out of range", name, s)
	}
	return &f, nil
}
