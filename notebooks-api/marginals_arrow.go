package notebooksapi

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/velo-fse/velo/query"
)

// marginalsRecord is a marginals release in the CSV's long form (marginal, attribute_i and
// level_i as utf8, count and its interval as float64), and the release's other fields as
// JSON (the metadata "velo.marginals" of the Arrow and Parquet answers), its tables there
// without their cells (attributes, sigma, rho, ci_half_width).
func marginalsRecord(rel *query.MarginalsRelease) (arrow.RecordBatch, string, error) {
	head := *rel
	head.Tables = make([]query.MarginalTable, len(rel.Tables))
	for i, t := range rel.Tables {
		t.Cells = nil
		head.Tables[i] = t
	}
	meta, err := json.Marshal(head)
	if err != nil {
		return nil, "", err
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
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
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
	return b.NewRecordBatch(), string(meta), nil
}

// writeMarginalsArrow writes a marginals release as an Arrow IPC stream (marginalsRecord).
func writeMarginalsArrow(w io.Writer, rel *query.MarginalsRelease) error {
	rec, _, err := marginalsRecord(rel)
	if err != nil {
		return err
	}
	defer rec.Release()
	wr := ipc.NewWriter(w, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(memory.NewGoAllocator()))
	if err := wr.Write(rec); err != nil {
		wr.Close()
		return fmt.Errorf("arrow: %w", err)
	}
	return wr.Close()
}

// writeMarginalsParquet writes a marginals release as a Parquet file: marginalsRecord's
// columns, the release's other fields as JSON in the key-value metadata "velo.marginals".
func writeMarginalsParquet(w io.Writer, rel *query.MarginalsRelease) error {
	rec, meta, err := marginalsRecord(rel)
	if err != nil {
		return err
	}
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	fw, err := pqarrow.NewFileWriter(arrow.NewSchema(rec.Schema().Fields(), nil), w, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return err
	}
	if err := fw.AppendKeyValueMetadata("velo.marginals", meta); err != nil {
		fw.Close()
		return err
	}
	if err := fw.Write(rec); err != nil {
		fw.Close()
		return fmt.Errorf("parquet: %w", err)
	}
	return fw.Close()
}
