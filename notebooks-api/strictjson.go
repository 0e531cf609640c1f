package notebooksapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// errStrictJSON is a request body whose object keys encoding/json would accept but Velo
// refuses: a duplicate key (encoding/json keeps the last, so `"epsilon": 0.3` shown to a
// reviewer could be overridden by a later `"epsilon": 2`) or a name that matches a field
// only case-insensitively ("Epsilon").
type strictJSONError struct {
	Field  string // the JSON path, e.g. "bounds.avg_wait"
	Detail string
}

func (e *strictJSONError) Error() string { return e.Detail }

// checkStrictJSON walks body and refuses duplicate keys at any depth and, where the
// target type v has struct fields, names that are not exactly a field's JSON name. It
// does not decode; encoding/json does that afterwards, with DisallowUnknownFields.
func checkStrictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return walkStrict(dec, t, "")
}

func walkStrict(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			at := joinPath(path, key)
			if seen[key] {
				return &strictJSONError{at, fmt.Sprintf("field %q is given twice", at)}
			}
			seen[key] = true
			var elem reflect.Type
			if t != nil {
				switch t.Kind() {
				case reflect.Struct:
					f, exact, near := fieldByJSONName(t, key)
					if !exact {
						if near != "" {
							return &strictJSONError{at, fmt.Sprintf("unknown field %q: names are case-sensitive (did you mean %q?)", at, joinPath(path, near))}
						}
						return &strictJSONError{at, fmt.Sprintf("unknown field %q", at)}
					}
					elem = f
				case reflect.Map:
					elem = t.Elem()
				}
			}
			if err := walkStrict(dec, elem, at); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkStrict(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// fieldByJSONName finds the struct field whose JSON name is exactly name; near is a
// field name equal to it but for case.
func fieldByJSONName(t reflect.Type, name string) (typ reflect.Type, exact bool, near string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type, true, ""
		}
		if strings.EqualFold(tag, name) {
			near = tag
		}
	}
	return nil, false, near
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
