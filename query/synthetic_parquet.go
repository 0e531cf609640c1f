package query

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

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
		fields[i] = arrow.Field{Name: a.Name, Type: arrowType(a.Type)}
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

// appendColumn appends each code's level value.
func appendColumn(b array.Builder, sqlType string, codes []int32, mids []any) error {
	bad := func(v any) error { return fmt.Errorf("level %v is not a %s", v, sqlType) }
	switch sqlType {
	case "BOOLEAN":
		bb := b.(*array.BooleanBuilder)
		vals := make([]bool, len(mids))
		for j, m := range mids {
			v, ok := m.(bool)
			if !ok {
				return bad(m)
			}
			vals[j] = v
		}
		for _, c := range codes {
			bb.Append(vals[c])
		}
	case "BIGINT":
		ib := b.(*array.Int64Builder)
		vals := make([]int64, len(mids))
		for j, m := range mids {
			v, ok := m.(int64)
			if !ok {
				return bad(m)
			}
			vals[j] = v
		}
		for _, c := range codes {
			ib.Append(vals[c])
		}
	case "DATE":
		db := b.(*array.Date32Builder)
		vals := make([]arrow.Date32, len(mids))
		for j, m := range mids {
			v, ok := m.(time.Time)
			if !ok {
				return bad(m)
			}
			vals[j] = arrow.Date32FromTime(v)
		}
		for _, c := range codes {
			db.Append(vals[c])
		}
	case "DOUBLE":
		fb := b.(*array.Float64Builder)
		vals := make([]float64, len(mids))
		for j, m := range mids {
			v, ok := m.(float64)
			if !ok {
				return bad(m)
			}
			vals[j] = v
		}
		for _, c := range codes {
			fb.Append(vals[c])
		}
	default:
		sb := b.(*array.StringBuilder)
		vals := make([]string, len(mids))
		for j, m := range mids {
			vals[j] = fmt.Sprint(m)
		}
		for _, c := range codes {
			sb.Append(vals[c])
		}
	}
	return nil
}

// writeOnly hides a writer's Close: the Parquet writer closes a sink that has one, and the
// caller owns w.
type writeOnly struct{ w io.Writer }

func (o writeOnly) Write(p []byte) (int, error) { return o.w.Write(p) }
