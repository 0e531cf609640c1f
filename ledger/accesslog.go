package ledger

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The access log: one record per request to the API or the DPO page — who (the user
// name, the OIDC subject, how they authenticated), when, from where (the client address),
// what (method and route pattern), on which project (and, later, under which permit), and
// the outcome (status, problem code). It holds no token, no query text, no query string
// and no path parameter beyond the project: the route is the pattern (/v1/projects/{id}),
// never the path.
//
// It is kept in the ledger's store, beside the hash-chained entries and not among them (a
// record per request is not a budget event, and pruning old records must not break the
// chain): for the file ledger, STATE/access/YYYY-MM-DD.ndjson, one file per UTC day, so
// pruning removes whole days; for the PostgreSQL ledger, the table velo_access_log.
// Records older than the retention (docs/identity.md: at least a year) are pruned.

// AccessRecord is one request.
type AccessRecord struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	User      string    `json:"user,omitempty"`    // "" for a request without a valid identity
	Role      string    `json:"role,omitempty"`    // researcher, official, dpo, admin
	Subject   string    `json:"subject,omitempty"` // the OIDC subject (sub) of a JWT or an OIDC session
	Via       string    `json:"via,omitempty"`     // token, jwt, session, oidc-session, oidc
	Client    string    `json:"client"`            // the client's address (the TCP peer's host)
	Method    string    `json:"method"`
	Route     string    `json:"route"` // the route pattern ("POST /v1/queries"), or "unmatched"
	Project   string    `json:"project,omitempty"`
	Permit    string    `json:"permit,omitempty"` // the data permit the project was created from
	Status    int       `json:"status"`
	Code      string    `json:"code,omitempty"` // the problem's code, for a refusal
	Millis    float64   `json:"duration_ms"`
}

// AccessFilter selects records: a zero field selects all.
type AccessFilter struct {
	Since, Until time.Time // Since <= Time < Until
	User         string
	Project      string
}

func (f AccessFilter) match(r AccessRecord) bool {
	return (f.Since.IsZero() || !r.Time.Before(f.Since)) && (f.Until.IsZero() || r.Time.Before(f.Until)) &&
		(f.User == "" || r.User == f.User) && (f.Project == "" || r.Project == f.Project)
}

// AccessStore keeps access records.
type AccessStore interface {
	// Append writes records durably.
	Append(ctx context.Context, recs []AccessRecord) error
	// Scan calls fn with the records f selects, oldest first.
	Scan(ctx context.Context, f AccessFilter, fn func(AccessRecord) error) error
	// Prune removes the records older than before (for the file store, whole UTC days
	// that end before it) and returns how many it removed (files for the file store).
	Prune(ctx context.Context, before time.Time) (int64, error)
}

// AccessDir is the file store's folder in a state directory.
const AccessDir = "access"

// FileAccessLog is the access log of a file ledger: NDJSON files by UTC day.
type FileAccessLog struct {
	dir string
	mu  sync.Mutex
}

// OpenFileAccessLog opens (creating) STATE/access.
func OpenFileAccessLog(state string) (*FileAccessLog, error) {
	dir := filepath.Join(state, AccessDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return &FileAccessLog{dir: dir}, nil
}

const accessDay = "2006-01-02"

// Append writes the records to their days' files and syncs them.
func (l *FileAccessLog) Append(_ context.Context, recs []AccessRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	byDay := map[string][]byte{}
	var days []string
	for _, r := range recs {
		d := r.Time.UTC().Format(accessDay)
		if _, ok := byDay[d]; !ok {
			days = append(days, d)
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		byDay[d] = append(append(byDay[d], b...), '\n')
	}
	for _, d := range days {
		f, err := os.OpenFile(filepath.Join(l.dir, d+".ndjson"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		_, err = f.Write(byDay[d])
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
	}
	return nil
}

// days lists the day files, oldest first.
func (l *FileAccessLog) days() ([]string, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	var days []string
	for _, e := range ents {
		d, ok := strings.CutSuffix(e.Name(), ".ndjson")
		if _, perr := time.Parse(accessDay, d); ok && perr == nil && e.Type().IsRegular() {
			days = append(days, d)
		}
	}
	slices.Sort(days)
	return days, nil
}

// Scan reads the day files f's dates can hold. A torn last line (a crash while writing)
// is skipped.
func (l *FileAccessLog) Scan(ctx context.Context, f AccessFilter, fn func(AccessRecord) error) error {
	days, err := l.days()
	if err != nil {
		return err
	}
	for _, d := range days {
		day, _ := time.Parse(accessDay, d)
		if (!f.Until.IsZero() && !day.Before(f.Until)) || (!f.Since.IsZero() && !day.Add(24*time.Hour).After(f.Since)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := scanAccessFile(filepath.Join(l.dir, d+".ndjson"), f, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanAccessFile(path string, f AccessFilter, fn func(AccessRecord) error) error {
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // pruned meanwhile
		}
		return fmt.Errorf("access log: %w", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r AccessRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue // a torn line
		}
		if f.match(r) {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// Prune removes the day files that end at or before `before`.
func (l *FileAccessLog) Prune(_ context.Context, before time.Time) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	days, err := l.days()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, d := range days {
		day, _ := time.Parse(accessDay, d)
		if day.Add(24 * time.Hour).After(before) {
			break
		}
		if err := os.Remove(filepath.Join(l.dir, d+".ndjson")); err != nil {
			return n, fmt.Errorf("access log: %w", err)
		}
		n++
	}
	return n, nil
}

// PGAccessLog is the access log in the PostgreSQL ledger's database.
type PGAccessLog struct {
	pool *pgxpool.Pool
}

const pgAccessSchema = `
CREATE TABLE IF NOT EXISTS velo_access_log (
	id     bigserial   PRIMARY KEY,
	at     timestamptz NOT NULL,
	record jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS velo_access_log_at ON velo_access_log (at);`

// AccessLog returns the access log kept in the ledger's database (creating its table).
func (l *PG) AccessLog(ctx context.Context) (*PGAccessLog, error) {
	if _, err := l.pool.Exec(ctx, pgAccessSchema); err != nil {
		return nil, l.dbError("create the access log's table", err)
	}
	return &PGAccessLog{pool: l.pool}, nil
}

// Append inserts the records in one transaction.
func (a *PGAccessLog) Append(ctx context.Context, recs []AccessRecord) error {
	rows := make([][]any, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		rows[i] = []any{r.Time, string(b)}
	}
	_, err := a.pool.CopyFrom(ctx, pgx.Identifier{"velo_access_log"}, []string{"at", "record"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	return nil
}

// Scan reads the records f selects, oldest first.
func (a *PGAccessLog) Scan(ctx context.Context, f AccessFilter, fn func(AccessRecord) error) error {
	q := "SELECT record FROM velo_access_log WHERE true"
	var args []any
	if !f.Since.IsZero() {
		args = append(args, f.Since)
		q += " AND at >= $" + strconv.Itoa(len(args))
	}
	if !f.Until.IsZero() {
		args = append(args, f.Until)
		q += " AND at < $" + strconv.Itoa(len(args))
	}
	rows, err := a.pool.Query(ctx, q+" ORDER BY at, id", args...)
	if err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		var r AccessRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("access log: a record does not decode: %w", err)
		}
		if f.match(r) {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}

// Prune deletes the records older than before.
func (a *PGAccessLog) Prune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := a.pool.Exec(ctx, "DELETE FROM velo_access_log WHERE at < $1", before)
	if err != nil {
		return 0, fmt.Errorf("access log: %w", err)
	}
	return tag.RowsAffected(), nil
}

// OpenPostgresAccessLog opens the access log of the PostgreSQL ledger at dsn on its own
// (velo access-log export while servers run).
func OpenPostgresAccessLog(ctx context.Context, dsn string) (*PGAccessLog, func(), error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("access log: %s: %w", RedactDSN(dsn), err)
	}
	if _, err := pool.Exec(ctx, pgAccessSchema); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("access log: %s: %w", RedactDSN(dsn), err)
	}
	return &PGAccessLog{pool: pool}, pool.Close, nil
}

// AccessCSVHeader is the CSV export's header row.
var AccessCSVHeader = []string{"time", "request_id", "user", "role", "subject", "via", "client", "method", "route", "project", "permit", "status", "code", "duration_ms"}

// WriteAccessCSV writes records as CSV rows (after AccessCSVHeader).
func WriteAccessCSV(w *csv.Writer, r AccessRecord) error {
	return w.Write([]string{r.Time.UTC().Format(time.RFC3339Nano), r.RequestID, r.User, r.Role, r.Subject, r.Via, r.Client, r.Method, r.Route,
		r.Project, r.Permit, strconv.Itoa(r.Status), r.Code, strconv.FormatFloat(r.Millis, 'f', -1, 64)})
}

// ExportAccess writes the records f selects as csv or ndjson.
func ExportAccess(ctx context.Context, s AccessStore, f AccessFilter, format string, w io.Writer) error {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(AccessCSVHeader); err != nil {
			return err
		}
		err := s.Scan(ctx, f, func(r AccessRecord) error { return WriteAccessCSV(cw, r) })
		cw.Flush()
		return errors.Join(err, cw.Error())
	case "ndjson":
		enc := json.NewEncoder(w)
		return s.Scan(ctx, f, func(r AccessRecord) error { return enc.Encode(r) })
	}
	return fmt.Errorf("access log: format %q: want csv or ndjson", format)
}
