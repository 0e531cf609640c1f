package notebooksapi

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/velo-fse/velo/release"
)

// writeArrow writes a release as an Arrow IPC stream: the columns of the CSV form (each
// key with its SQL type; each dp column as float64 with <col>_ci_lower and <col>_ci_upper
// beside it, then <col>_flags as text) in one record batch, and the release's other fields in the schema metadata
// (scalars as text, structured fields as JSON), so pyarrow and polars read it directly.
func writeArrow(w io.Writer, rel *release.Release) error {
	mem := memory.NewGoAllocator()
	rec, err := releaseRecord(mem, rel)
	if err != nil {
		return err
	}
	defer rec.Release()
	wr := ipc.NewWriter(w, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
	if err := wr.Write(rec); err != nil {
		wr.Close()
		return fmt.Errorf("arrow: %w", err)
	}
	return wr.Close()
}

// releaseRecord is the release as one Arrow record batch, its schema carrying the
// release's fields (writeArrow's layout); the caller releases it.
func releaseRecord(mem memory.Allocator, rel *release.Release) (arrow.RecordBatch, error) {
	var fields []arrow.Field
	type col struct {
		src  int    // index in the release's columns
		part string // "", "lower", "upper"
	}
	var cols []col
	for i, c := range rel.Columns {
		meta := map[string]string{"velo.kind": c.Kind, "velo.sql_type": c.Type}
		if c.Aggregate != "" {
			meta["velo.aggregate"] = c.Aggregate
		}
		if c.Bounds != nil {
			meta["velo.bounds"] = fmt.Sprintf("[%s,%s]", num(c.Bounds[0]), num(c.Bounds[1]))
		}
		if c.Kind != "dp" {
			fields = append(fields, arrow.Field{Name: c.Name, Type: keyType(c.Type), Nullable: true, Metadata: arrow.MetadataFrom(meta)})
			cols = append(cols, col{src: i})
			continue
		}
		if c.Range != nil {
			meta["velo.range"] = c.Range.String()
		}
		if c.Accuracy != "" {
			meta["velo.accuracy"] = c.Accuracy
		}
		fields = append(fields,
			arrow.Field{Name: c.Name, Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: arrow.MetadataFrom(meta)},
			arrow.Field{Name: c.Name + "_ci_lower", Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: arrow.MetadataFrom(map[string]string{"velo.kind": "ci_lower", "velo.of": c.Name})},
			arrow.Field{Name: c.Name + "_ci_upper", Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: arrow.MetadataFrom(map[string]string{"velo.kind": "ci_upper", "velo.of": c.Name})},
			arrow.Field{Name: c.Name + "_flags", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: arrow.MetadataFrom(map[string]string{"velo.kind": "flags", "velo.of": c.Name})},
		)
		cols = append(cols, col{src: i}, col{src: i, part: "lower"}, col{src: i, part: "upper"}, col{src: i, part: "flags"})
	}
	md, err := arrowMetadata(rel)
	if err != nil {
		return nil, err
	}
	schema := arrow.NewSchema(fields, &md)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for ri, row := range rel.Rows {
		for fi, c := range cols {
			var v any
			switch c.part {
			case "":
				v = row[c.src]
			case "lower", "upper":
				if lo, hi, ok := release.CIBounds(rel.CI[ri][c.src]); ok {
					v = lo
					if c.part == "upper" {
						v = hi
					}
				}
			case "flags":
				if f := rel.FlagsOf(ri, c.src); len(f) > 0 {
					v = strings.Join(f, " ")
				}
			}
			if err := appendValue(b.Field(fi), v); err != nil {
				return nil, fmt.Errorf("arrow: column %s row %d: %w", fields[fi].Name, ri, err)
			}
		}
	}
	return b.NewRecordBatch(), nil
}

// arrowMetadata carries every field of the release but its columns' data.
func arrowMetadata(rel *release.Release) (arrow.Metadata, error) {
	js := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}
	split, err := js(rel.BudgetSplit)
	if err != nil {
		return arrow.Metadata{}, err
	}
	bounding, err := js(rel.Bounding)
	if err != nil {
		return arrow.Metadata{}, err
	}
	columns, err := js(rel.Columns)
	if err != nil {
		return arrow.Metadata{}, err
	}
	notes, err := js(rel.Notes)
	if err != nil {
		return arrow.Metadata{}, err
	}
	selection, err := js(rel.Selection)
	if err != nil {
		return arrow.Metadata{}, err
	}
	price, err := js(rel.Price)
	if err != nil {
		return arrow.Metadata{}, err
	}
	kv := [][2]string{
		{"velo.release_id", rel.ReleaseID}, {"velo.project", rel.Project}, {"velo.dataset_version", rel.DatasetVersion},
		{"velo.cached", strconv.FormatBool(rel.Cached)}, {"velo.confidence", num(rel.Confidence)},
		{"velo.epsilon", num(rel.Epsilon)}, {"velo.delta", num(rel.Delta)},
		{"velo.budget_left_epsilon", num(rel.BudgetLeft.Epsilon)}, {"velo.budget_left_delta", num(rel.BudgetLeft.Delta)},
		{"velo.budget_split", split}, {"velo.bounding", bounding}, {"velo.columns", columns},
		{"velo.sql", rel.SQL}, {"velo.dry_run", strconv.FormatBool(rel.DryRun)},
		{"velo.clamp_to_range", strconv.FormatBool(rel.ClampToRange)}, {"velo.notes", notes}, {"velo.selection", selection},
		{"velo.dummy", strconv.FormatBool(rel.Dummy)}, {"velo.price", price},
	}
	keys, vals := make([]string, len(kv)), make([]string, len(kv))
	for i, p := range kv {
		keys[i], vals[i] = p[0], p[1]
	}
	return arrow.NewMetadata(keys, vals), nil
}

// keyType is the Arrow type of a key column of the given SQL type.
func keyType(sqlType string) arrow.DataType {
	switch sqlType {
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	case "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	}
	return arrow.BinaryTypes.String
}

func appendValue(b array.Builder, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.Float64Builder:
		f, ok := release.Number(v)
		if !ok {
			return fmt.Errorf("%T is not a number", v)
		}
		b.Append(f)
	case *array.BooleanBuilder:
		x, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%T is not a boolean", v)
		}
		b.Append(x)
	case *array.Date32Builder:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T is not a date", v)
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return err
		}
		b.Append(arrow.Date32FromTime(t))
	case *array.StringBuilder:
		if s, ok := v.(string); ok {
			b.Append(s)
		} else {
			b.Append(fmt.Sprint(v))
		}
	default:
		return fmt.Errorf("unexpected builder %T", b)
	}
	return nil
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
