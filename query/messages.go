package query

import (
	"fmt"
	"strings"
)

// DuckDB's parser desugars some SQL into internal spellings: GLOB becomes a call of ~~~,
// INTERVAL 30 DAY a call of to_days(trunc(...)), [1, 2] list_value, x[1] array_extract,
// a type it does not know UNBOUND. A refusal names what the user wrote, never these, and
// says what to write instead. The tables below are the one place that knows the internal
// spellings; TestAdversarialCorpus holds every refusal of the corpus to them
// (internalSpellings).

// intervalAdvice is the refusal of every INTERVAL form.
const intervalAdvice = "intervals (INTERVAL 30 DAY, INTERVAL '1 month') are not supported: add a number of days to a date (d_contact + 30) or compare dates with date_diff('day', d_contact, d_appointment) > 30"

// castTargets lists the types a CAST may name, for messages.
const castTargets = "INTEGER, BIGINT, SMALLINT, DOUBLE (or FLOAT, DECIMAL), VARCHAR, DATE, BOOLEAN"

// internalFunctions are the calls DuckDB's parser makes from syntax the user wrote, with
// the refusal that names that syntax.
var internalFunctions = map[string]string{
	"~~~":               "GLOB is not supported: use LIKE, where % matches any text and _ one character (provider_id LIKE '12%')",
	"!~~~":              "NOT GLOB is not supported: use NOT LIKE, where % matches any text and _ one character",
	"regexp_full_match": "regular expressions (SIMILAR TO, ~, regexp_full_match) are not supported: use LIKE, starts_with, ends_with or contains",
	"like_escape":       "LIKE ... ESCAPE is not supported: write the pattern without ESCAPE (to find a literal % or _, use contains(col, '%'))",
	"not_like_escape":   "NOT LIKE ... ESCAPE is not supported: write the pattern without ESCAPE (to find a literal % or _, use contains(col, '%'))",
	"ilike_escape":      "ILIKE ... ESCAPE is not supported: write the pattern without ESCAPE (to find a literal % or _, use contains(lower(col), '%'))",
	"not_ilike_escape":  "NOT ILIKE ... ESCAPE is not supported: write the pattern without ESCAPE",
	"list_value":        "list literals ([1, 2]) are not supported: compare with IN (1, 2)",
	"list_pack":         "list literals ([1, 2]) are not supported: compare with IN (1, 2)",
	"struct_pack":       "struct literals ({'k': v}) are not supported: compare the values one by one",
	"array_extract":     "subscripts (x[1]) are not supported: use substring(x, 1, 1) on strings",
	"array_slice":       "slices (x[1:2]) are not supported: use substring(x, 1, 2) on strings",
	"list_extract":      "subscripts (x[1]) are not supported: use substring(x, 1, 1) on strings",
	"struct_extract":    "field access (x.f) is not supported",
	"||":                "string concatenation (||) is not supported: compare the parts, or use starts_with and ends_with",
	"concat":            "string concatenation (concat) is not supported: compare the parts, or use starts_with and ends_with",
	"^":                 "powers (^) are not supported: multiply (x * x)",
	"**":                "powers (**) are not supported: multiply (x * x)",
	"pow":               "powers (pow) are not supported: multiply (x * x)",
	"power":             "powers (power) are not supported: multiply (x * x)",
	"date_add":          "date_add is not supported: add a number of days to a date (d_contact + 30)",
	"date_sub":          "date_sub is not supported: subtract a number of days from a date (d_contact - 30), or use date_diff('day', a, b)",
	"now":               "now() is not supported: a release must not depend on the day it is made; write the date ('2025-01-31')",
	"today":             "today() is not supported: a release must not depend on the day it is made; write the date ('2025-01-31')",
	"current_date":      "current_date is not supported: a release must not depend on the day it is made; write the date ('2025-01-31')",
	"current_timestamp": "current_timestamp is not supported: a release must not depend on the day it is made; write the date ('2025-01-31')",
	"get_current_time":  "current_time is not supported: a release must not depend on the day it is made",
	"grouping":          "GROUPING() is not supported: Velo has no grouping sets (ROLLUP, CUBE), so it would always be 0",
	"grouping_id":       "GROUPING() is not supported: Velo has no grouping sets (ROLLUP, CUBE), so it would always be 0",
}

// intervalFunctions are the calls DuckDB makes of INTERVAL n <unit>.
var intervalFunctions = map[string]bool{
	"to_years": true, "to_months": true, "to_days": true, "to_weeks": true, "to_hours": true,
	"to_minutes": true, "to_seconds": true, "to_milliseconds": true, "to_microseconds": true,
	"to_quarters": true, "to_decades": true, "to_centuries": true, "to_millennia": true,
}

// unknownFunction is the refusal of a call outside the registry, naming the syntax the
// user wrote when DuckDB's parser made the call.
func unknownFunction(name string, isOperator bool) string {
	if intervalFunctions[name] {
		return intervalAdvice
	}
	if msg, ok := internalFunctions[name]; ok {
		return msg
	}
	if strings.HasPrefix(name, "regexp_") {
		return fmt.Sprintf("%s: regular expressions are not supported: use LIKE, starts_with, ends_with or contains", name)
	}
	if isOperator {
		return fmt.Sprintf("the operator %s is not supported", name)
	}
	return fmt.Sprintf("function %s is not allowed (docs/privacy.md lists the functions a query may call)", name)
}

// operatorNames are DuckDB's OPERATOR node types, in the user's SQL.
var operatorNames = map[string]string{
	"ARRAY_EXTRACT":     "subscripts (x[1]) are not supported: use substring(x, 1, 1) on strings",
	"ARRAY_SLICE":       "slices (x[1:2]) are not supported: use substring(x, 1, 2) on strings",
	"STRUCT_EXTRACT":    "field access (x.f) is not supported",
	"GROUPING_FUNCTION": internalFunctions["grouping"],
	"OPERATOR_TRY":      "TRY(...) is not supported: every expression already gives NULL where it cannot be computed",
	"ARRAY_CONSTRUCTOR": internalFunctions["list_value"],
	"UNPACK":            "unpacking (*COLUMNS) is not supported: name the columns",
}

// unknownOperator is the refusal of an OPERATOR node Velo does not read.
func unknownOperator(typ string) string {
	if msg, ok := operatorNames[typ]; ok {
		return msg
	}
	return fmt.Sprintf("the operator %s is not supported", strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(typ, "OPERATOR_"), "_", " ")))
}

// classNames are DuckDB's expression classes Velo does not read, in the user's SQL.
var classNames = map[string]string{
	"COLLATE":              "COLLATE is not supported: compare lower(x) or use ILIKE to ignore case",
	"POSITIONAL_REFERENCE": "positional references (#1) are not supported: write the column's name, or GROUP BY 1",
	"DEFAULT":              "DEFAULT is not supported here",
}

// unknownClass is the refusal of an expression class Velo does not read.
func unknownClass(class string) string {
	if msg, ok := classNames[class]; ok {
		return msg
	}
	return fmt.Sprintf("%s expressions are not supported", strings.ToLower(strings.ReplaceAll(class, "_", " ")))
}

// comparisonSQL spells DuckDB's comparison types as SQL.
var comparisonSQL = map[string]string{
	"COMPARE_EQUAL": "=", "COMPARE_NOTEQUAL": "<>", "COMPARE_LESSTHAN": "<", "COMPARE_GREATERTHAN": ">",
	"COMPARE_LESSTHANOREQUALTO": "<=", "COMPARE_GREATERTHANOREQUALTO": ">=",
	"COMPARE_DISTINCT_FROM": "IS DISTINCT FROM", "COMPARE_NOT_DISTINCT_FROM": "IS NOT DISTINCT FROM",
	"COMPARE_IN": "IN", "COMPARE_NOT_IN": "NOT IN", "COMPARE_BETWEEN": "BETWEEN", "COMPARE_NOT_BETWEEN": "NOT BETWEEN",
}

// sqlSpelling is a DuckDB expression type as SQL, for messages.
func sqlSpelling(typ string) string {
	if s, ok := comparisonSQL[typ]; ok {
		return s
	}
	for _, p := range []string{"COMPARE_", "CONJUNCTION_", "OPERATOR_"} {
		typ = strings.TrimPrefix(typ, p)
	}
	return strings.ReplaceAll(typ, "_", " ")
}

// joinSQL spells DuckDB's join (reference type, join type) as SQL.
func joinSQL(refType, joinType string) string {
	switch refType {
	case "CROSS":
		return "CROSS JOIN (or a comma between tables)"
	case "NATURAL":
		return "NATURAL JOIN"
	case "POSITIONAL":
		return "POSITIONAL JOIN"
	case "ASOF":
		return "ASOF JOIN"
	case "DEPENDENT":
		return "LATERAL join"
	}
	switch joinType {
	case "OUTER":
		return "FULL JOIN"
	case "":
		return "this join"
	}
	return joinType + " JOIN"
}

// castTypeName is the type a CAST names, as the user wrote it.
func castTypeName(t *typeInfo) string {
	switch t.ID {
	case "UNBOUND":
		if t.TypeInfo != nil && t.TypeInfo.Name != "" {
			if t.TypeInfo.Schema != "" {
				return t.TypeInfo.Schema + "." + t.TypeInfo.Name
			}
			return t.TypeInfo.Name
		}
		return "this type"
	case "LIST", "ARRAY":
		return "a list type (T[])"
	case "STRUCT", "MAP", "UNION":
		return t.ID
	case "TIMESTAMP WITH TIME ZONE":
		return "TIMESTAMPTZ"
	}
	return t.ID
}
