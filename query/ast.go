package query

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The shapes below decode DuckDB's json_serialize_sql output. Only what the checker
// inspects is decoded; any field it does not know makes a node it refuses.

type astResult struct {
	Error        bool        `json:"error"`
	ErrorType    string      `json:"error_type"`
	ErrorMessage string      `json:"error_message"`
	Position     json.Number `json:"position"`
	Statements   []struct {
		Node selectNode `json:"node"`
	} `json:"statements"`
}

type selectNode struct {
	Type      string     `json:"type"`
	Modifiers []modifier `json:"modifiers"`
	CTEMap    struct {
		Map []json.RawMessage `json:"map"`
	} `json:"cte_map"`
	SelectList        []*node         `json:"select_list"`
	FromTable         *tableRef       `json:"from_table"`
	Where             *node           `json:"where_clause"`
	GroupExpressions  []*node         `json:"group_expressions"`
	GroupSets         [][]int         `json:"group_sets"`
	AggregateHandling string          `json:"aggregate_handling"`
	Having            *node           `json:"having"`
	Sample            json.RawMessage `json:"sample"`
	Qualify           *node           `json:"qualify"`
	// set operations
	Left  *selectNode `json:"left"`
	Right *selectNode `json:"right"`
}

type modifier struct {
	Type   string      `json:"type"`
	Orders []orderTerm `json:"orders"`
	Limit  *node       `json:"limit"`
	Offset *node       `json:"offset"`
}

type orderTerm struct {
	Type       string `json:"type"`
	NullOrder  string `json:"null_order"`
	Expression *node  `json:"expression"`
}

type tableRef struct {
	Type          string          `json:"type"`
	Alias         string          `json:"alias"`
	QueryLocation uint64          `json:"query_location"`
	SchemaName    string          `json:"schema_name"`
	CatalogName   string          `json:"catalog_name"`
	TableName     string          `json:"table_name"`
	ColumnAlias   []string        `json:"column_name_alias"`
	Sample        json.RawMessage `json:"sample"`
	AtClause      json.RawMessage `json:"at_clause"`
	Left          *tableRef       `json:"left"`
	Right         *tableRef       `json:"right"`
	Condition     *node           `json:"condition"`
	JoinType      string          `json:"join_type"`
	RefType       string          `json:"ref_type"`
	UsingColumns  []string        `json:"using_columns"`
}

type node struct {
	Class         string   `json:"class"`
	Type          string   `json:"type"`
	Alias         string   `json:"alias"`
	QueryLocation uint64   `json:"query_location"`
	ColumnNames   []string `json:"column_names"`

	Value *constValue `json:"value"`

	FunctionName string    `json:"function_name"`
	Schema       string    `json:"schema"`
	Catalog      string    `json:"catalog"`
	Children     []*node   `json:"children"`
	Filter       *node     `json:"filter"`
	OrderBys     *modifier `json:"order_bys"`
	Distinct     bool      `json:"distinct"`
	IsOperator   bool      `json:"is_operator"`
	ExportState  bool      `json:"export_state"`

	Child    *node     `json:"child"`
	CastType *typeInfo `json:"cast_type"`
	TryCast  bool      `json:"try_cast"`

	CaseChecks []struct {
		When *node `json:"when_expr"`
		Then *node `json:"then_expr"`
	} `json:"case_checks"`
	Else *node `json:"else_expr"`

	Left  *node `json:"left"`
	Right *node `json:"right"`

	Input *node `json:"input"`
	Lower *node `json:"lower"`
	Upper *node `json:"upper"`
}

type typeInfo struct {
	ID       string `json:"id"`
	TypeInfo *struct {
		Width int `json:"width"`
		Scale int `json:"scale"`
		// Name and Schema are a type DuckDB's parser does not know (ID "UNBOUND").
		Name   string `json:"name"`
		Schema string `json:"schema"`
	} `json:"type_info"`
}

type constValue struct {
	Type   typeInfo        `json:"type"`
	IsNull bool            `json:"is_null"`
	Value  json.RawMessage `json:"value"`
}

// pos is the node's byte offset in the SQL DuckDB parsed, or -1. DuckDB gives no offset
// for some nodes (a subscript, COLLATE, a typed literal): their first operand's is used,
// which lies inside the construct.
func (n *node) pos() int {
	if n == nil {
		return -1
	}
	if n.QueryLocation <= math.MaxInt32 {
		return int(n.QueryLocation)
	}
	for _, ch := range append([]*node{n.Child, n.Left, n.Input}, n.Children...) {
		if p := ch.pos(); p >= 0 {
			return p
		}
	}
	return -1
}

func (t *tableRef) pos() int {
	if t == nil || t.QueryLocation > math.MaxInt32 {
		return -1
	}
	return int(t.QueryLocation)
}

// literal decodes a constant into a Go value: int64, float64, string, bool, or nil.
func (c *constValue) literal() (any, typ, error) {
	if c.IsNull {
		return nil, tNull, nil
	}
	switch c.Type.ID {
	case "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "UINTEGER", "UBIGINT", "USMALLINT", "UTINYINT":
		n, err := strconv.ParseInt(string(c.Value), 10, 64)
		if err != nil {
			return nil, tNull, fmt.Errorf("integer literal out of range: integers must lie within ±9.2e18 (write a larger number as a decimal, 1.5e20)")
		}
		return n, tNum, nil
	case "HUGEINT":
		return nil, tNull, fmt.Errorf("integer literal out of range: integers must lie within ±9.2e18 (write a larger number as a decimal, 1.5e20)")
	case "DECIMAL":
		scale := 0
		if c.Type.TypeInfo != nil {
			scale = c.Type.TypeInfo.Scale
		}
		v, ok := new(big.Float).SetString(string(c.Value))
		if !ok {
			return nil, tNull, fmt.Errorf("malformed decimal literal")
		}
		f, _ := v.Quo(v, new(big.Float).SetFloat64(math.Pow10(scale))).Float64()
		return f, tNum, nil
	case "DOUBLE", "FLOAT":
		var f float64
		if err := json.Unmarshal(c.Value, &f); err != nil {
			var s string
			if json.Unmarshal(c.Value, &s) == nil { // Infinity or NaN (quoteNonFinite)
				return nil, tNull, fmt.Errorf("number literal out of range: numbers must lie within ±1.7e308")
			}
			return nil, tNull, fmt.Errorf("malformed number literal")
		}
		return f, tNum, nil
	case "VARCHAR":
		var s string
		if err := json.Unmarshal(c.Value, &s); err != nil {
			return nil, tNull, fmt.Errorf("malformed string literal")
		}
		return s, tString, nil
	case "BOOLEAN":
		var b bool
		if err := json.Unmarshal(c.Value, &b); err != nil {
			return nil, tNull, fmt.Errorf("malformed boolean literal")
		}
		return b, tBool, nil
	}
	return nil, tNull, fmt.Errorf("literals of type %s are not supported", c.Type.ID)
}

// quoteNonFinite quotes the bare Infinity, -Infinity and NaN that json_serialize_sql
// writes for a number literal beyond float64 (1e400), which are not JSON: quoted, the
// serialisation decodes and the literal is refused with its position.
func quoteNonFinite(js string) string {
	var b strings.Builder
	inString, escaped := false, false
	for i := 0; i < len(js); i++ {
		ch := js[i]
		if inString {
			b.WriteByte(ch)
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
			continue
		}
		if ch == '"' {
			inString = true
			b.WriteByte(ch)
			continue
		}
		matched := false
		for _, w := range []string{"-Infinity", "Infinity", "NaN"} {
			if strings.HasPrefix(js[i:], w) {
				b.WriteString(`"` + w + `"`)
				i += len(w) - 1
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(ch)
		}
	}
	return b.String()
}
