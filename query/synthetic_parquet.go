package query

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// parquetBatch is the number of rows per record batch (and row group) written.
const parquetBatch = 1 << 20

// WriteParquet writes the synthetic rows as Parquet: one column per attribute, typed as
// MarginalAttribute.Type says (a domain's values, a month's first day, a bin's midpoint),
// no person identifier, and the release record (this struct as JSON, without the rows) in
// the file's key-value metadata under "velo.synthetic".
func (s *Synthetic) WriteParquet(w io.Writer) error {
	if s.data == nil {
		return fmt.Errorf("synthetic release %s holds no rows", s.ReleaseID)
	}
	fields := make([]arrow.Field, len(s.Attributes))
	for i, a := range s.Attributes {
		fields[i] = arrow.Field{Name: a.Name, Type: arrowType(a.Type), Nullable: a.Null}
	}
	schema := arrow.NewSchema(fields, nil)
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDictionaryDefault(true))
	fw, err := pqarrow.NewFileWriter(schema, writeOnly{w}, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return err
	}
	meta, err := json.Marshal(s)
	if err != nil {
		fw.Close()
		return err
	}
	if err := fw.AppendKeyValueMetadata("velo.synthetic", string(meta)); err != nil {
		fw.Close()
		return err
	}
	mem := memory.NewGoAllocator()
	n := s.data.Rows()
	for start := 0; start < n || start == 0; start += parquetBatch {
		end := min(start+parquetBatch, n)
		b := array.NewRecordBuilder(mem, schema)
		for i, a := range s.Attributes {
			col := s.data.Columns[i][start:end]
			mids := make([]any, len(a.values))
			for j := range mids {
				mids[j] = a.Mid(j)
			}
			if err := appendColumn(b.Field(i), a.Type, col, mids); err != nil {
				b.Release()
				fw.Close()
				return fmt.Errorf("column %s: %w", a.Name, err)
			}
		}
		rec := b.NewRecordBatch()
		b.Release()
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return err
		}
		if end >= n {
			break
		}
	}
	return fw.Close()
}

func arrowType(sqlType string) arrow.DataType {
	switch sqlType {
	case "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case "BIGINT":
		return arrow.PrimitiveTypes.Int64
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	}
	return arrow.BinaryTypes.String
}

// appendColumn appends each code's level value (NULL for the NULL level, whose mid is nil).
func appendColumn(b array.Builder, sqlType string, codes []int32, mids []any) error {
	null := make([]bool, len(mids))
	for j, m := range mids {
		null[j] = m == nil
	}
	switch sqlType {
	case "BOOLEAN":
		return appendTyped(b.(*array.BooleanBuilder), sqlType, codes, mids, null, func(v bool) bool { return v })
	case "BIGINT":
		return appendTyped(b.(*array.Int64Builder), sqlType, codes, mids, null, func(v int64) int64 { return v })
	case "DATE":
		return appendTyped(b.(*array.Date32Builder), sqlType, codes, mids, null, arrow.Date32FromTime)
	case "DOUBLE":
		return appendTyped(b.(*array.Float64Builder), sqlType, codes, mids, null, func(v float64) float64 { return v })
	}
	strs := make([]any, len(mids))
	for j, m := range mids {
		if m != nil {
			strs[j] = fmt.Sprint(m)
		}
	}
	return appendTyped(b.(*array.StringBuilder), sqlType, codes, strs, null, func(v string) string { return v })
}

// appendTyped appends codes' values, each level's value of type In converted to the
// builder's Out.
func appendTyped[In, Out any, B interface {
	Append(Out)
	AppendNull()
}](b B, sqlType string, codes []int32, mids []any, null []bool, conv func(In) Out) error {
	vals := make([]Out, len(mids))
	for j, m := range mids {
		if null[j] {
			continue
		}
		v, ok := m.(In)
		if !ok {
			return fmt.Errorf("level %v is not a %s", m, sqlType)
		}
		vals[j] = conv(v)
	}
	for _, c := range codes {
		if null[c] {
			b.AppendNull()
		} else {
			b.Append(vals[c])
		}
	}
	return nil
}

// writeOnly hides a writer's Close: the Parquet writer closes a sink that has one, and the
// caller owns w.
type writeOnly struct{ w io.Writer }

func (o writeOnly) Write(p []byte) (int, error) { return o.w.Write(p) }
