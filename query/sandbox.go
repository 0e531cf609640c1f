package query

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
)

// Limits are the engine's resource limits: the sandbox's, and how many queries may read
// data at once.
type Limits struct {
	MemoryLimit string        // DuckDB memory_limit, e.g. "2GB"
	Threads     int           // DuckDB threads
	Timeout     time.Duration // per query; the query is interrupted when it expires
	// MaxConcurrent is how many queries may read data at once; 0: no limit. A query
	// answered from the release cache, a dry run, and a query waiting for an identical
	// one in flight take no slot.
	MaxConcurrent int
	// QueueTimeout is how long a query waits for a slot before it is refused with a
	// *BusyError; 0: 2s, negative: refused at once.
	QueueTimeout time.Duration
}

func (l *Limits) defaults() {
	if l.MemoryLimit == "" {
		l.MemoryLimit = "2GB"
	}
	if l.Threads <= 0 {
		l.Threads = 2
	}
	if l.Timeout <= 0 {
		l.Timeout = 60 * time.Second
	}
	if l.QueueTimeout == 0 {
		l.QueueTimeout = 2 * time.Second
	}
}

// sandbox is a DuckDB database that can read the dataset's Parquet files and nothing
// else: external access disabled but for the data directory, no extension installed or
// loaded, configuration locked, memory and threads limited. Only statements printed
// from a checked plan are ever sent to it.
type sandbox struct {
	connector *duckdb.Connector
	db        *sql.DB
	limits    Limits
	// domains memoises resolveDomain by its input (the key's type and the domain's
	// literals): a query over literals only, whose answer never changes.
	domains memo[[]any]
}

func openSandbox(ctx context.Context, dataDir string, cat *dataset.Catalog, limits Limits) (*sandbox, error) {
	limits.defaults()
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "velo-sandbox-")
	if err != nil {
		return nil, err
	}
	var views []string
	for _, t := range cat.Tables {
		views = append(views, fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet(%s)",
			quoteIdent(t.Name), quoteString(dataset.TableGlob(abs, t.Name))))
	}
	// Settings and views are global to the database: applied by the first connection,
	// which then locks the configuration; later connections find them in place.
	var setupMu sync.Mutex
	setup := false
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		setupMu.Lock()
		defer setupMu.Unlock()
		if setup {
			return nil
		}
		stmts := []string{
			"SET autoinstall_known_extensions = false",
			"SET autoload_known_extensions = false",
			fmt.Sprintf("SET memory_limit = %s", quoteString(limits.MemoryLimit)),
			fmt.Sprintf("SET threads = %d", limits.Threads),
			// Operators past the memory limit spill here (the sandbox's own directory).
			fmt.Sprintf("SET temp_directory = %s", quoteString(tmp)),
			// No result's row order matters (groups are read by key), and keeping it
			// costs memory in every operator that would otherwise stream or spill.
			"SET preserve_insertion_order = false",
			// The rewrite's per-person selections (L0's row_number() … <= G, per-table
			// truncation before a join) stay window operators, which sort and spill:
			// DuckDB would otherwise run them as top-k aggregates, whose states live
			// outside the buffer manager and fail past the memory limit at ~10M rows.
			"SET disabled_optimizers = 'top_n_window_elimination'",
			fmt.Sprintf("SET allowed_directories = [%s, %s]", quoteString(abs+"/"), quoteString(tmp+"/")),
			"SET enable_external_access = false",
			// The dataset's files never change under an open engine (a new version is new
			// files): keep their footers rather than read them again for every statement.
			"SET parquet_metadata_cache = true",
		}
		stmts = append(stmts, views...)
		stmts = append(stmts, "SET lock_configuration = true")
		for _, q := range stmts {
			if _, err := execer.ExecContext(ctx, q, nil); err != nil {
				return fmt.Errorf("sandbox setup: %w", err)
			}
		}
		setup = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open sandbox: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(8)
	// Keep them: database/sql keeps two idle connections by default, so concurrent queries
	// would open (and set up) a DuckDB connection each. Every statement the sandbox runs on
	// a connection replaces or drops what it leaves (bounded is CREATE OR REPLACE TEMP).
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		connector.Close()
		return nil, fmt.Errorf("open sandbox: %w", err)
	}
	return &sandbox{connector: connector, db: db, limits: limits, domains: memo[[]any]{max: 1024, maxBytes: 16 << 20}}, nil
}

func (s *sandbox) close() error {
	return errors.Join(s.db.Close(), s.connector.Close())
}

// prepare binds the rewrite without reading any data (Parquet metadata only) and returns
// each public key's domain as DuckDB groups it; see bind, whose statements it closes.
func (s *sandbox) prepare(ctx context.Context, rw rewritten, domains []*keyDomain) ([][]any, error) {
	b, err := s.bind(ctx, rw, domains)
	if err != nil {
		return nil, err
	}
	b.close()
	return b.domains, nil
}

// boundRewrite is a rewrite bound on one of the sandbox's connections before the charge,
// and held until it runs: run executes the statements bound here instead of binding them
// again. close gives the connection back.
type boundRewrite struct {
	s    *sandbox
	conn *sql.Conn
	rw   rewritten
	// main is the statement that reads the groups (Single, or Groups over bounded as a
	// common table expression) and tree the quantile statements by aggregate index, bound;
	// none when bounded is materialised (Groups and Tree then read a table that run
	// creates: they are bound again there).
	main *duckdb.Stmt
	tree []*duckdb.Stmt
	// domains are the public keys' domains as DuckDB groups them (nil for a key without
	// one).
	domains [][]any
}

// bind binds the rewrite without reading any data (Parquet metadata only): a statement
// that does not bind fails here, before any charge. It resolves each public key's domain
// as DuckDB groups it: the checker's domain values cast to the type DuckDB resolved for the
// key expression, de-duplicated by DuckDB and scanned back exactly as group keys are. CASE
// results 1 and 1.0 are one group, so they are one domain value. The bound statements and
// their connection are kept for run; the caller closes what bind returns.
func (s *sandbox) bind(ctx context.Context, rw rewritten, domains []*keyDomain) (_ *boundRewrite, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	b := &boundRewrite{s: s, conn: conn, rw: rw, domains: make([][]any, len(domains))}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	types := make([]string, len(domains))
	if rw.materialise() {
		// The bounded table does not exist yet: bind its definition, then the readers
		// against an empty table of the same shape, and read the keys' types from it.
		if _, err := conn.ExecContext(ctx, rw.createBounded(true)); err != nil {
			return nil, err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS bounded")
		for _, q := range append([]string{rw.Groups}, rw.Tree...) {
			if q == "" {
				continue
			}
			st, err := conn.PrepareContext(ctx, q)
			if err != nil {
				return nil, err
			}
			st.Close()
		}
		for i, d := range domains {
			if d == nil {
				continue
			}
			if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT column_type FROM (DESCRIBE SELECT k%d FROM bounded)", i)).Scan(&types[i]); err != nil {
				return nil, fmt.Errorf("type of key %d: %w", i, err)
			}
		}
	} else {
		main := rw.Inline()
		if rw.Single != "" {
			main = rw.Single
		}
		err := conn.Raw(func(dc any) error {
			c, ok := dc.(*duckdb.Conn)
			if !ok {
				return fmt.Errorf("sandbox: driver connection %T", dc)
			}
			prep := func(q string) (*duckdb.Stmt, error) {
				st, err := c.PrepareContext(ctx, q)
				if err != nil {
					return nil, err
				}
				return st.(*duckdb.Stmt), nil
			}
			var err error
			if b.main, err = prep(main); err != nil {
				return err
			}
			for j, q := range rw.Tree {
				if q == "" {
					continue
				}
				if b.tree == nil {
					b.tree = make([]*duckdb.Stmt, len(rw.Tree))
				}
				if b.tree[j], err = prep(q); err != nil {
					return err
				}
			}
			// The groups statement's first columns are the keys k0, k1, … as bounded
			// holds them: their types are the keys' types.
			for i, d := range domains {
				if d != nil {
					types[i] = columnTypeName(b.main, i)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, d := range domains {
			if d != nil && types[i] == "" {
				// A type columnTypeName does not name: DuckDB's own description of it.
				if types[i], err = describeKeyType(ctx, conn, main, i); err != nil {
					return nil, fmt.Errorf("type of key %d: %w", i, err)
				}
			}
		}
	}
	for i, d := range domains {
		if d == nil {
			continue
		}
		if b.domains[i], err = s.resolveDomain(ctx, conn, d, types[i]); err != nil {
			return nil, fmt.Errorf("domain of key %d: %w", i, err)
		}
	}
	return b, nil
}

// describeKeyType is the type of key i (column k<i>) of a groups statement as DESCRIBE
// names it: it binds the statement again.
func describeKeyType(ctx context.Context, conn *sql.Conn, groups string, i int) (string, error) {
	var typ string
	err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT column_type FROM (DESCRIBE %s) WHERE column_name = 'k%d'", groups, i)).Scan(&typ)
	return typ, err
}

// columnTypeName is the type of a bound statement's column n as DuckDB's DESCRIBE names
// it, for the types a group key may have; "" for any other.
func columnTypeName(st *duckdb.Stmt, n int) string {
	info, err := st.ColumnTypeInfo(n)
	if err != nil {
		return ""
	}
	switch t := info.InternalType(); t {
	case duckdb.TYPE_DECIMAL:
		if d, ok := info.Details().(*duckdb.DecimalDetails); ok {
			return fmt.Sprintf("DECIMAL(%d,%d)", d.Width, d.Scale)
		}
	case duckdb.TYPE_TIMESTAMP_TZ:
		return "TIMESTAMP WITH TIME ZONE"
	default:
		if name, ok := scalarTypeNames[t]; ok && info.Alias() == "" {
			return name
		}
	}
	return ""
}

// scalarTypeNames are the SQL names of the scalar types a group key may have, as DESCRIBE
// prints them.
var scalarTypeNames = map[duckdb.Type]string{
	duckdb.TYPE_BOOLEAN: "BOOLEAN", duckdb.TYPE_TINYINT: "TINYINT", duckdb.TYPE_SMALLINT: "SMALLINT",
	duckdb.TYPE_INTEGER: "INTEGER", duckdb.TYPE_BIGINT: "BIGINT", duckdb.TYPE_HUGEINT: "HUGEINT",
	duckdb.TYPE_UTINYINT: "UTINYINT", duckdb.TYPE_USMALLINT: "USMALLINT", duckdb.TYPE_UINTEGER: "UINTEGER",
	duckdb.TYPE_UBIGINT: "UBIGINT", duckdb.TYPE_FLOAT: "FLOAT", duckdb.TYPE_DOUBLE: "DOUBLE",
	duckdb.TYPE_DATE: "DATE", duckdb.TYPE_TIME: "TIME", duckdb.TYPE_TIMESTAMP: "TIMESTAMP",
	duckdb.TYPE_VARCHAR: "VARCHAR", duckdb.TYPE_UUID: "UUID", duckdb.TYPE_INTERVAL: "INTERVAL",
}

// close releases the bound statements and gives the connection back to the pool; it may
// be called more than once.
func (b *boundRewrite) close() {
	if b.conn == nil {
		return
	}
	if b.main != nil || b.tree != nil {
		b.conn.Raw(func(any) error {
			for _, st := range append([]*duckdb.Stmt{b.main}, b.tree...) {
				if st != nil {
					st.Close()
				}
			}
			return nil
		})
		b.main, b.tree = nil, nil
	}
	b.conn.Close()
	b.conn = nil
}

// resolveDomain is resolveDomain, memoised by its input.
func (s *sandbox) resolveDomain(ctx context.Context, conn *sql.Conn, d *keyDomain, typ string) ([]any, error) {
	var key strings.Builder
	key.WriteString(typ)
	for _, v := range d.Values {
		lit := (&literal{V: v}).SQL()
		key.WriteString("\x00" + strconv.Itoa(len(lit)) + ":" + lit) // length-prefixed: one key, one list
	}
	k := key.String()
	if vals, ok := s.domains.get(k); ok {
		return slices.Clone(vals), nil
	}
	vals, err := resolveDomain(ctx, conn, d, typ)
	if err == nil {
		s.domains.put(k, slices.Clone(vals), 2*len(k))
	}
	return vals, err
}

// resolveDomain casts a domain's values to the key's DuckDB type and keeps one value per
// group DuckDB would form, in the domain's order. It reads no data: only the literals.
func resolveDomain(ctx context.Context, conn *sql.Conn, d *keyDomain, typ string) ([]any, error) {
	out := []any{}
	const chunk = 1000
	seen := map[string]bool{}
	for start := 0; start < len(d.Values); start += chunk {
		vals := d.Values[start:min(start+chunk, len(d.Values))]
		rows := make([]string, len(vals))
		for i, v := range vals {
			rows[i] = fmt.Sprintf("(%d, TRY_CAST(%s AS %s))", start+i, (&literal{V: v}).SQL(), typ)
		}
		q := "SELECT v FROM (VALUES " + strings.Join(rows, ", ") + ") AS d(i, v) WHERE v IS NOT NULL GROUP BY v ORDER BY min(i)"
		rs, err := conn.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var v any
			if err := rs.Scan(&v); err != nil {
				rs.Close()
				return nil, err
			}
			// Across chunks DuckDB has not seen the other values: the scanned form,
			// the same one group keys take, decides.
			v = normaliseKey(v)
			if id := groupID([]any{v}); !seen[id] {
				seen[id] = true
				out = append(out, v)
			}
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// errorClass is the kind of a DuckDB error ("Out of Range Error") without its message,
// which may quote data: what the operator's log may hold.
func errorClass(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if i := strings.Index(msg, ":"); i > 0 && i < 60 {
		return msg[:i]
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timeout or interruption"
	}
	return "error"
}

// groupRow is one group's exact bounded totals.
type groupRow struct {
	keys    []any
	persons int64
	vals    []int64            // per column after the keys and persons: aggregates' totals
	tree    map[int]treeCounts // by aggregate index
}

type treeCounts map[[2]int64]int64 // (level, node) -> count

// errDuplicateGroup is two groups of the result that Velo would read as one key tuple.
var errDuplicateGroup = errors.New("sandbox: two result groups have the same key tuple")

// errNotStarted marks a failure before the rewrite was sent to DuckDB: no data was read.
var errNotStarted = errors.New("sandbox: query not started")

// run executes the rewrite and returns the groups. Errors here are never shown to the
// user as they are: they may quote data. An error wrapping errNotStarted happened before
// any data was read.
func (s *sandbox) run(ctx context.Context, rw rewritten, nkeys int) (map[string]*groupRow, error) {
	ctx, cancel := context.WithTimeout(ctx, s.limits.Timeout)
	defer cancel()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotStarted, err)
	}
	defer conn.Close()
	return execute(ctx, conn, rw, nkeys, nil, nil)
}

// run executes the statements bind bound (and binds those that read the materialised
// bounded table), as sandbox.run does; the connection stays held until close.
func (b *boundRewrite) run(ctx context.Context, nkeys int) (map[string]*groupRow, error) {
	if b.conn == nil {
		return nil, fmt.Errorf("%w: sandbox: bound rewrite closed", errNotStarted)
	}
	ctx, cancel := context.WithTimeout(ctx, b.s.limits.Timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		// Out of time before anything was sent to DuckDB (as sandbox.run's wait for a
		// connection would be): nothing was read.
		return nil, fmt.Errorf("%w: %w", errNotStarted, err)
	}
	return execute(ctx, b.conn, b.rw, nkeys, b.main, b.tree)
}

// each runs q on conn, or st when it is not nil (a statement bound on conn), and calls f
// with each row's values, as database/sql scans them into an any: []byte copied, every
// other value as the driver gives it.
func each(ctx context.Context, conn *sql.Conn, q string, st *duckdb.Stmt, f func(vals []any) error) error {
	return conn.Raw(func(dc any) error {
		var rows driver.Rows
		var err error
		if st != nil {
			rows, err = st.QueryContext(ctx, nil)
		} else if c, ok := dc.(*duckdb.Conn); ok {
			rows, err = c.QueryContext(ctx, q, nil)
		} else {
			err = fmt.Errorf("sandbox: driver connection %T", dc)
		}
		if err != nil {
			return err
		}
		n := len(rows.Columns())
		dest := make([]driver.Value, n)
		for {
			if err := rows.Next(dest); err != nil {
				if err == io.EOF {
					break
				}
				return errors.Join(err, rows.Close())
			}
			vals := make([]any, n)
			for i, v := range dest {
				if b, ok := v.([]byte); ok {
					v = bytes.Clone(b)
				}
				vals[i] = v
			}
			if err := f(vals); err != nil {
				return errors.Join(err, rows.Close())
			}
		}
		return rows.Close()
	})
}

// execute runs a rewrite on conn: main and tree, when set, are its groups statement and
// quantile statements bound on conn (see bind); otherwise the statements are bound here.
func execute(ctx context.Context, conn *sql.Conn, rw rewritten, nkeys int, main *duckdb.Stmt, tree []*duckdb.Stmt) (map[string]*groupRow, error) {
	groupsSQL := rw.Inline()
	if rw.materialise() {
		// Groups and the trees both read bounded: computed once, as a temporary table.
		if _, err := conn.ExecContext(ctx, rw.createBounded(false)); err != nil {
			return nil, err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS bounded")
		groupsSQL = rw.Groups
		main, tree = nil, nil // bound against the empty table: bound again on this one
	}
	if rw.Single != "" {
		groupsSQL = rw.Single
	}
	// Single's rows end with a GROUPING flag and a leaf node per tree, and a count.
	treeCols := 0
	if rw.Single != "" {
		treeCols = 2*len(rw.SingleTrees) + 1
	}
	type leafRow struct {
		group      string
		tree       int
		node, rows int64
	}
	var leaves []leafRow
	groups := map[string]*groupRow{}
	err := each(ctx, conn, groupsSQL, main, func(vals []any) error {
		keys := normaliseKeys(vals[:nkeys])
		if treeCols > 0 {
			tail := vals[len(vals)-treeCols:]
			for i, js := range rw.SingleTrees {
				if toInt64(tail[2*i]) != 0 {
					continue
				}
				// A leaf row of the trees js; a NULL node counts the NULL values, which no
				// tree holds.
				if tail[2*i+1] != nil {
					for _, j := range js {
						leaves = append(leaves, leafRow{groupID(keys), j, toInt64(tail[2*i+1]), toInt64(tail[len(tail)-1])})
					}
				}
				return nil
			}
			vals = vals[:len(vals)-treeCols]
		}
		g := &groupRow{keys: keys, tree: map[int]treeCounts{}}
		g.persons = toInt64(vals[nkeys])
		for _, v := range vals[nkeys+1:] {
			g.vals = append(g.vals, toInt64(v))
		}
		id := groupID(g.keys)
		if groups[id] != nil {
			// Two groups DuckDB formed would be read as one: fail closed rather than
			// merge or drop one. The key's scanned form is at fault, not the data.
			return errDuplicateGroup
		}
		groups[id] = g
		return nil
	})
	if err != nil {
		return nil, err
	}
	if treeCols > 0 {
		for _, l := range leaves {
			g := groups[l.group]
			if g == nil {
				continue
			}
			if g.tree[l.tree] == nil {
				g.tree[l.tree] = treeCounts{}
			}
			g.tree[l.tree][[2]int64{int64(rw.tree.Height), l.node}] = l.rows
		}
		for _, g := range groups {
			for _, js := range rw.SingleTrees {
				for _, j := range js {
					if g.tree[j] != nil {
						rw.tree.rollUp(g.tree[j])
					}
				}
			}
		}
	}
	for j, q := range rw.Tree {
		if q == "" {
			continue
		}
		var st *duckdb.Stmt
		if j < len(tree) {
			st = tree[j]
		}
		err := each(ctx, conn, q, st, func(vals []any) error {
			if len(vals) != nkeys+3 {
				return fmt.Errorf("sandbox: a quantile statement read %d columns, not %d", len(vals), nkeys+3)
			}
			g := groups[groupID(normaliseKeys(vals[:nkeys]))]
			if g == nil {
				return nil
			}
			if g.tree[j] == nil {
				g.tree[j] = treeCounts{}
			}
			g.tree[j][[2]int64{toInt64(vals[nkeys]), toInt64(vals[nkeys+1])}] = toInt64(vals[nkeys+2])
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			if g.tree[j] != nil {
				rw.tree.rollUp(g.tree[j])
			}
		}
	}
	return groups, nil
}
