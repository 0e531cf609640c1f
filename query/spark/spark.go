// Package spark is Velo's Spark backend (docs/scale.md): a query.Backend that sends the
// engine's bounded statements, printed in Spark SQL, to a Spark cluster through Spark
// Connect, and returns the exact per-group totals for the engine to noise.
//
// The cluster reads the dataset's own Parquet files (the same layout DuckDB reads, at the
// same path or under DataURI). Each table is a temporary view of the session whose schema
// Velo declares from the files' footers rather than letting Spark infer it: Spark refuses
// to infer the pid column (FIXED_LEN_BYTE_ARRAY(16) with the UUID annotation), and reads it
// as BINARY when told to.
package spark

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/spark-connect-go/spark/client/channel"
	sparksql "github.com/apache/spark-connect-go/spark/sql"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
	"google.golang.org/grpc"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/query"
)

// Config opens a Backend.
type Config struct {
	// Remote is the Spark Connect server's address: host:port or sc://host:port.
	Remote string
	// DataDir is the dataset's directory, as Velo reads it.
	DataDir string
	// DataURI is the same directory as the cluster reads it ("" : DataDir's absolute
	// path, for a cluster that mounts it at the same path).
	DataURI string
}

// Backend is a Spark Connect session with the dataset's tables as temporary views.
type Backend struct {
	session sparksql.SparkSession
	conn    *grpc.ClientConn
}

var _ query.Backend = (*Backend)(nil)

// Open connects to the Spark Connect server and declares the dataset's tables.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	remote := cfg.Remote
	if !strings.HasPrefix(remote, "sc://") {
		remote = "sc://" + remote
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cat, err := dataset.ReadCatalog(abs)
	if err != nil {
		return nil, err
	}
	base, err := channel.NewBuilder(remote)
	if err != nil {
		return nil, fmt.Errorf("spark: address %s: %w", cfg.Remote, err)
	}
	cb := &connBuilder{BaseBuilder: base}
	session, err := sparksql.NewSessionBuilder().WithChannelBuilder(cb).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("spark: connect to %s: %w", cfg.Remote, err)
	}
	b := &Backend{session: session, conn: cb.conn}
	uri := cfg.DataURI
	if uri == "" {
		uri = abs
	}
	stmts := []string{
		// The rewrite is written for ANSI SQL semantics (Spark 4's default): say so.
		"SET spark.sql.ansi.enabled = true",
		"SET spark.sql.session.timeZone = UTC",
	}
	for _, t := range cat.Tables {
		cols, err := tableSchema(abs, t.Name)
		if err != nil {
			b.Close()
			return nil, err
		}
		path := strings.TrimSuffix(uri, "/") + "/" + t.Name
		stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s (%s) USING parquet OPTIONS (path %s, pathGlobFilter '*.parquet')",
			ident(t.Name), strings.Join(cols, ", "), stringLit(path)))
	}
	for _, q := range stmts {
		if _, err := session.Sql(ctx, q); err != nil {
			b.Close()
			return nil, fmt.Errorf("spark: set up the session on %s: %w", cfg.Remote, err)
		}
	}
	return b, nil
}

// connBuilder keeps the connection the session opens, to close it.
type connBuilder struct {
	*channel.BaseBuilder
	conn *grpc.ClientConn
}

func (c *connBuilder) Build(ctx context.Context) (*grpc.ClientConn, error) {
	conn, err := c.BaseBuilder.Build(ctx)
	c.conn = conn
	return conn, err
}

// Dialect is Spark SQL.
func (b *Backend) Dialect() string { return query.DialectSpark }

// Bind has Spark analyse the statement (no data read).
func (b *Backend) Bind(ctx context.Context, stmt string) error {
	df, err := b.session.Sql(ctx, stmt)
	if err != nil {
		return err
	}
	_, err = df.Schema(ctx)
	return err
}

// Query runs the statement and converts its Arrow result to rows.
func (b *Backend) Query(ctx context.Context, stmt string) ([][]any, error) {
	df, err := b.session.Sql(ctx, stmt)
	if err != nil {
		return nil, err
	}
	tp, err := df.ToArrow(ctx)
	if err != nil {
		return nil, err
	}
	tbl := *tp
	defer tbl.Release()
	return Rows(tbl)
}

// Close closes the connection; the session's views go with it.
func (b *Backend) Close() error {
	if b.conn != nil {
		return b.conn.Close()
	}
	return nil
}

// Rows converts an Arrow table to rows of Go values: integers as int64, floats as
// float64, dates as time.Time at midnight UTC, decimals of scale 0 (the exact sums) as
// *big.Int, other decimals as float64.
func Rows(tbl arrow.Table) ([][]any, error) {
	n := int(tbl.NumRows())
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = make([]any, tbl.NumCols())
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		r := 0
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			for i := 0; i < chunk.Len(); i++ {
				v, err := value(chunk, i)
				if err != nil {
					return nil, fmt.Errorf("spark: column %s: %w", tbl.Schema().Field(c).Name, err)
				}
				rows[r][c] = v
				r++
			}
		}
	}
	return rows, nil
}

func value(a arrow.Array, i int) (any, error) {
	if a.IsNull(i) {
		return nil, nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Int8:
		return int64(a.Value(i)), nil
	case *array.Int16:
		return int64(a.Value(i)), nil
	case *array.Int32:
		return int64(a.Value(i)), nil
	case *array.Int64:
		return a.Value(i), nil
	case *array.Float32:
		return float64(a.Value(i)), nil
	case *array.Float64:
		return a.Value(i), nil
	case *array.String:
		return a.Value(i), nil
	case *array.Date32:
		return time.Unix(int64(a.Value(i))*86400, 0).UTC(), nil
	case *array.Decimal128:
		dt := a.DataType().(*arrow.Decimal128Type)
		if dt.Scale == 0 {
			// The exact sums: read as DuckDB's HUGEINTs are.
			return a.Value(i).BigInt(), nil
		}
		r := new(big.Rat).SetFrac(a.Value(i).BigInt(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(dt.Scale)), nil))
		f, _ := r.Float64()
		return f, nil
	case *array.Null:
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected Arrow type %s", a.DataType())
}

// tableSchema is the Spark column list of a table, from its first Parquet file's footer
// (ingest writes every file of a table with one schema).
func tableSchema(dataDir, table string) ([]string, error) {
	files, err := filepath.Glob(dataset.TableGlob(dataDir, table))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("spark: table %s has no Parquet file in %s", table, dataDir)
	}
	f, err := os.Open(files[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, fi.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("spark: %s: %w", files[0], err)
	}
	var cols []string
	elems := pf.Metadata().Schema
	if len(elems) == 0 {
		return nil, fmt.Errorf("spark: %s has no schema", files[0])
	}
	for _, e := range elems[1:] { // the root first
		if e.NumChildren.Valid && e.NumChildren.V > 0 {
			return nil, fmt.Errorf("spark: %s: column %s is nested", files[0], e.Name)
		}
		t, err := sparkType(e)
		if err != nil {
			return nil, fmt.Errorf("spark: %s: column %s: %w", files[0], e.Name, err)
		}
		cols = append(cols, ident(e.Name)+" "+t)
	}
	return cols, nil
}

// sparkType is the Spark type that reads a Parquet column as DuckDB does.
func sparkType(e format.SchemaElement) (string, error) {
	if !e.Type.Valid {
		return "", errors.New("no physical type")
	}
	lt := e.LogicalType.Value
	ct := deprecated.ConvertedType(-1)
	if e.ConvertedType.Valid {
		ct = e.ConvertedType.V
	}
	switch e.Type.V {
	case format.Boolean:
		return "BOOLEAN", nil
	case format.Int32:
		switch l := lt.(type) {
		case *format.DateType:
			return "DATE", nil
		case *format.IntType:
			if !l.IsSigned {
				return "BIGINT", nil
			}
			switch l.BitWidth {
			case 8:
				return "TINYINT", nil
			case 16:
				return "SMALLINT", nil
			}
			return "INT", nil
		case *format.DecimalType:
			return fmt.Sprintf("DECIMAL(%d, %d)", l.Precision, l.Scale), nil
		}
		if ct == deprecated.Date {
			return "DATE", nil
		}
		return "INT", nil
	case format.Int64:
		switch l := lt.(type) {
		case *format.TimestampType:
			return "TIMESTAMP", nil
		case *format.DecimalType:
			return fmt.Sprintf("DECIMAL(%d, %d)", l.Precision, l.Scale), nil
		case *format.IntType:
			if !l.IsSigned {
				return "", errors.New("unsigned 64-bit integers have no Spark type")
			}
		}
		return "BIGINT", nil
	case format.Float:
		return "FLOAT", nil
	case format.Double:
		return "DOUBLE", nil
	case format.ByteArray:
		switch lt.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return "STRING", nil
		}
		if ct == deprecated.UTF8 || ct == deprecated.Enum || ct == deprecated.Json {
			return "STRING", nil
		}
		return "BINARY", nil
	case format.FixedLenByteArray:
		if l, ok := lt.(*format.DecimalType); ok {
			return fmt.Sprintf("DECIMAL(%d, %d)", l.Precision, l.Scale), nil
		}
		// The pid (UUID): Spark reads a fixed-length byte array as BINARY.
		return "BINARY", nil
	}
	return "", fmt.Errorf("physical type %v has no Spark type", e.Type.V)
}

func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func stringLit(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
