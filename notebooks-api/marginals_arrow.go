package notebooksapi

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/velo-fse/velo/query"
)

// writeMarginalsArrow writes a marginals release as an Arrow IPC stream in the CSV's long
// form (marginal, attribute_i and level_i as utf8, count and its interval as float64) with
// the release's other fields, as JSON, in the schema metadata under "velo.marginals".
func writeMarginalsArrow(w io.Writer, rel *query.MarginalsRelease) error {
	head := *rel
	head.Tables = nil
	meta, err := json.Marshal(head)
	if err != nil {
		return err
	}
	fields := []arrow.Field{{Name: "marginal", Type: arrow.PrimitiveTypes.Int32}}
	for i := 1; i <= query.MaxMarginalAttributes; i++ {
		fields = append(fields,
			arrow.Field{Name: fmt.Sprintf("attribute_%d", i), Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: fmt.Sprintf("level_%d", i), Type: arrow.BinaryTypes.String, Nullable: true})
	}
	fields = append(fields,
		arrow.Field{Name: "count", Type: arrow.PrimitiveTypes.Float64},
		arrow.Field{Name: "ci_lower", Type: arrow.PrimitiveTypes.Float64},
		arrow.Field{Name: "ci_upper", Type: arrow.PrimitiveTypes.Float64})
	md := arrow.NewMetadata([]string{"velo.marginals"}, []string{string(meta)})
	schema := arrow.NewSchema(fields, &md)
	mem := memory.NewGoAllocator()
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for ti, t := range rel.Tables {
		for _, c := range t.Cells {
			b.Field(0).(*array.Int32Builder).Append(int32(ti + 1))
			for i := range query.MaxMarginalAttributes {
				ab, lb := b.Field(1+2*i).(*array.StringBuilder), b.Field(2+2*i).(*array.StringBuilder)
				if i < len(t.Attributes) {
					ab.Append(t.Attributes[i])
					lb.Append(fmt.Sprint(c.Levels[i]))
				} else {
					ab.AppendNull()
					lb.AppendNull()
				}
			}
			n := 1 + 2*query.MaxMarginalAttributes
			b.Field(n).(*array.Float64Builder).Append(c.Count)
			b.Field(n + 1).(*array.Float64Builder).Append(c.CILower)
			b.Field(n + 2).(*array.Float64Builder).Append(c.CIUpper)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	wr := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := wr.Write(rec); err != nil {
		wr.Close()
		return fmt.Errorf("arrow: %w", err)
	}
	return wr.Close()
}
