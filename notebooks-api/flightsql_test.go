package notebooksapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// flightServer serves Flight SQL beside ts's HTTP API and returns a client.
func flightServer(t *testing.T, ts *testServer) *flightsql.Client {
	t.Helper()
	cl, _ := flightServerAt(t, ts)
	return cl
}

// flightServerAt is flightServer, with the server's address for more clients.
func flightServerAt(t *testing.T, ts *testServer) (*flightsql.Client, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Server.ServeFlightSQL(ctx, ln) }()
	cl, err := flightsql.NewClient(ln.Addr().String(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("flight sql server: %v", err)
		}
	})
	return cl, ln.Addr().String()
}

// as is a call context with user's token and the headers kv.
func (ts *testServer) as(user string, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), append([]string{"authorization", "Bearer " + ts.Tokens[user]}, kv...)...)
}

// fetch executes sql and reads its one endpoint.
func fetch(ctx context.Context, cl *flightsql.Client, sql string) (arrow.RecordBatch, error) {
	info, err := cl.Execute(ctx, sql)
	if err != nil {
		return nil, err
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	var recs []arrow.RecordBatch
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := rdr.Err(); err != nil {
		return nil, err
	}
	if len(recs) != 1 {
		return nil, errors.New("want one record batch")
	}
	return recs[0], nil
}

func grpcCode(t *testing.T, err error, want codes.Code, wantText string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != want || !strings.Contains(st.Message(), wantText) {
		t.Errorf("error %v, want %s containing %q", err, want, wantText)
	}
}

// A Flight SQL client queries as an HTTP one does: the same release (keys, values and
// their intervals, the release in the schema's metadata), charged once, answered from the
// cache after; epsilon from the SQL's OPTIONS or a header; refusals with the API's codes.
func TestFlightSQLQueries(t *testing.T) {
	ts := startServer(t)
	cl := flightServer(t, ts)
	rita := ts.as("rita", "x-velo-project", "wl")

	before := ts.project(t, "wl")
	const sql = "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.25) region, COUNT(*) AS n FROM booking GROUP BY region"
	rec, err := fetch(rita, cl, sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var names []string
	for _, f := range rec.Schema().Fields() {
		names = append(names, f.Name)
	}
	if want := []string{"region", "n", "n_ci_lower", "n_ci_upper", "n_flags"}; !slices.Equal(names, want) {
		t.Fatalf("columns %v, want %v", names, want)
	}
	md := rec.Schema().Metadata()
	id, _ := md.GetValue("velo.release_id")
	if eps, _ := md.GetValue("velo.epsilon"); id == "" || eps != "0.25" || rec.NumRows() == 0 {
		t.Fatalf("release %q epsilon %q, %d rows", id, eps, rec.NumRows())
	}
	n, lo, hi := rec.Column(1).(*array.Float64), rec.Column(2).(*array.Float64), rec.Column(3).(*array.Float64)
	for i := 0; i < int(rec.NumRows()); i++ {
		if !(lo.Value(i) <= n.Value(i) && n.Value(i) <= hi.Value(i)) {
			t.Errorf("row %d: %v outside [%v, %v]", i, n.Value(i), lo.Value(i), hi.Value(i))
		}
	}
	after := ts.project(t, "wl")
	if d := after.Spent.Epsilon - before.Spent.Epsilon; d < 0.2499 || d > 0.2501 || after.Queries != before.Queries+1 {
		t.Fatalf("charged %v epsilon in %d queries, want 0.25 in one", d, after.Queries-before.Queries)
	}

	// Again: the cache answers, free, with the same release.
	again, err := fetch(rita, cl, sql)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	if id2, _ := again.Schema().Metadata().GetValue("velo.release_id"); id2 != id {
		t.Errorf("again: release %s, want the cached %s", id2, id)
	}
	if c, _ := again.Schema().Metadata().GetValue("velo.cached"); c != "true" {
		t.Errorf("again: cached = %q", c)
	}
	if st := ts.project(t, "wl"); st.Spent != after.Spent {
		t.Errorf("a cached release charged: spent %v, then %v", after.Spent, st.Spent)
	}

	// Epsilon from a header; the schema alone is a dry run.
	hdr := ts.as("rita", "x-velo-project", "wl", "x-velo-epsilon", "0.125")
	r3, err := fetch(hdr, cl, "SELECT sex, COUNT(*) AS n FROM person GROUP BY sex")
	if err != nil {
		t.Fatal(err)
	}
	r3.Release()
	if eps, _ := r3.Schema().Metadata().GetValue("velo.epsilon"); eps != "0.125" {
		t.Errorf("epsilon from the header: %q", eps)
	}
	spent := ts.project(t, "wl").Spent
	sr, err := cl.GetExecuteSchema(rita, "SELECT region, AVG(wait_days) AS w FROM booking GROUP BY region")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := flight.DeserializeSchema(sr.GetSchema(), nil)
	if err != nil || schema.NumFields() != 5 {
		t.Fatalf("dry-run schema %v, %v", schema, err)
	}
	if st := ts.project(t, "wl"); st.Spent != spent {
		t.Errorf("GetExecuteSchema charged: %v then %v", spent, st.Spent)
	}

	// Refusals, each before any charge.
	_, err = cl.Execute(rita, "SELECT regionx, COUNT(*) AS n FROM booking GROUP BY region")
	grpcCode(t, err, codes.InvalidArgument, "[sql_rejected] unknown column regionx (at position 7)")
	_, err = cl.Execute(ts.as("rita"), "SELECT COUNT(*) AS n FROM booking")
	grpcCode(t, err, codes.InvalidArgument, "x-velo-project")
	_, err = cl.Execute(ts.as("otto", "x-velo-project", "wl"), "SELECT COUNT(*) AS n FROM booking")
	grpcCode(t, err, codes.PermissionDenied, "[forbidden]")
	_, err = cl.Execute(ts.as("dora"), "SELECT COUNT(*) AS n FROM booking")
	grpcCode(t, err, codes.PermissionDenied, "[forbidden]")
	_, err = cl.Execute(context.Background(), "SELECT COUNT(*) AS n FROM booking")
	grpcCode(t, err, codes.Unauthenticated, "[unauthorized]")
	_, err = cl.Execute(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer velo_nope"), "SELECT COUNT(*) AS n FROM booking")
	grpcCode(t, err, codes.Unauthenticated, "[unauthorized]")
	_, err = cl.Execute(ts.as("rita", "x-velo-project", "wl", "x-velo-epsilon", "lots"), "SELECT COUNT(*) AS n FROM booking")
	grpcCode(t, err, codes.InvalidArgument, "[invalid_options]")
	if st := ts.project(t, "wl"); st.Spent != spent {
		t.Errorf("a refused statement charged: %v then %v", spent, st.Spent)
	}

	// The budget: project small has epsilon 1.
	small := ts.as("rita", "x-velo-project", "small")
	if _, err := cl.Execute(small, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1) COUNT(*) AS n FROM booking"); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Execute(small, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.5) COUNT(*) AS n FROM booking WHERE wait_days > 3")
	grpcCode(t, err, codes.ResourceExhausted, "[budget_exhausted]")

	// A ticket is its user's only.
	info, err := cl.Execute(rita, "SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority")
	if err != nil {
		t.Fatal(err)
	}
	if rdr, err := cl.DoGet(ts.as("grafana"), info.Endpoint[0].Ticket); err == nil {
		for rdr.Next() {
		}
		err = rdr.Err()
		rdr.Release()
		grpcCode(t, err, codes.NotFound, "[not_found]")
	} else {
		grpcCode(t, err, codes.NotFound, "[not_found]")
	}
}

// The catalog calls list what each of the user's projects is approved for.
func TestFlightSQLCatalog(t *testing.T) {
	ts := startServer(t)
	cl := flightServer(t, ts)
	read := func(ctx context.Context, info *flight.FlightInfo, err error) []arrow.RecordBatch {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		defer rdr.Release()
		var out []arrow.RecordBatch
		for rdr.Next() {
			r := rdr.RecordBatch()
			r.Retain()
			out = append(out, r)
		}
		return out
	}
	strs := func(recs []arrow.RecordBatch, col int) []string {
		var out []string
		for _, r := range recs {
			c := r.Column(col).(*array.String)
			for i := 0; i < c.Len(); i++ {
				out = append(out, c.Value(i))
			}
		}
		return out
	}
	rita := ts.as("rita")
	info, err := cl.GetCatalogs(rita)
	if got := strs(read(rita, info, err), 0); !slices.Equal(got, []string{"velo"}) {
		t.Errorf("catalogs %v", got)
	}
	info, err = cl.GetDBSchemas(rita, &flightsql.GetDBSchemasOpts{})
	if got := strs(read(rita, info, err), 1); !slices.Equal(got, []string{"wl", "small"}) {
		t.Errorf("schemas %v, want rita's projects", got)
	}
	info, err = cl.GetTables(rita, &flightsql.GetTablesOpts{IncludeSchema: true})
	recs := read(rita, info, err)
	var tables []string
	for i, s := range strs(recs, 1) {
		tables = append(tables, s+"."+strs(recs, 2)[i])
	}
	if !slices.Contains(tables, "wl.booking") || !slices.Contains(tables, "wl.person") || !slices.Contains(tables, "small.booking") || slices.Contains(tables, "small.person") {
		t.Errorf("tables %v: want wl's booking and person, small's booking only", tables)
	}
	// The person table's schema for wl: only the approved columns.
	for _, r := range recs {
		for i := 0; i < int(r.NumRows()); i++ {
			if r.Column(1).(*array.String).Value(i) != "wl" || r.Column(2).(*array.String).Value(i) != "person" {
				continue
			}
			s, err := flight.DeserializeSchema(r.Column(4).(*array.Binary).Value(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			var cols []string
			for _, f := range s.Fields() {
				cols = append(cols, f.Name)
			}
			for _, c := range cols {
				if !slices.Contains([]string{"pid", "birth_year", "region", "sex"}, c) {
					t.Errorf("wl.person lists column %s, not approved for wl", c)
				}
			}
		}
	}
	otto := ts.as("otto")
	info, err = cl.GetTables(otto, &flightsql.GetTablesOpts{TableNameFilterPattern: ptr("book%")})
	recs = read(otto, info, err)
	if got := strs(recs, 2); !slices.Equal(got, []string{"booking"}) {
		t.Errorf("otto's tables like book%%: %v", got)
	}
}

func ptr(s string) *string { return &s }

// Session options (kept in the client's cookie) set the project, epsilon and delta of the
// session's statements; a header overrides them; unknown names and bad values are refused
// by name; a malformed cookie is no session, never a crash; CloseSession forgets them.
func TestFlightSQLSessionOptions(t *testing.T) {
	ts := startServer(t)
	_, addr := flightServerAt(t, ts)
	cl, err := flightsql.NewClient(addr, nil, []flight.ClientMiddleware{flight.NewClientCookieMiddleware()}, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rita := ts.as("rita") // two projects: without a header or a session option, none is chosen
	opts, err := flight.NewSessionOptionValues(map[string]any{"project": "small", "epsilon": 0.25, "delta": "lots", "bogus": "x"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.SetSessionOptions(rita, &flight.SetSessionOptionsRequest{SessionOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]string{}
	for k, v := range res.GetErrors() {
		errs[k] = v.GetValue().String()
	}
	if len(errs) != 2 || errs["bogus"] != "INVALID_NAME" || errs["delta"] != "INVALID_VALUE" {
		t.Errorf("SetSessionOptions errors %v: want bogus INVALID_NAME, delta INVALID_VALUE", errs)
	}
	got, err := cl.GetSessionOptions(rita, &flight.GetSessionOptionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if o := got.GetSessionOptions(); o["project"].GetStringValue() != "small" || o["epsilon"].GetDoubleValue() != 0.25 || len(o) != 2 {
		t.Errorf("session options %v", o)
	}

	before := ts.project(t, "small").Spent
	if _, err := cl.Execute(rita, "SELECT COUNT(*) AS n FROM booking"); err != nil {
		t.Fatal(err)
	}
	after := ts.project(t, "small").Spent
	if d := after.Epsilon - before.Epsilon; d < 0.2499 || d > 0.2501 {
		t.Errorf("the session's statement charged %v to small, want 0.25", d)
	}
	// A header overrides the session.
	if _, err := cl.Execute(ts.as("rita", "x-velo-epsilon", "0.125"), "SELECT COUNT(*) AS n FROM booking WHERE wait_days > 1"); err != nil {
		t.Fatal(err)
	}
	if d := ts.project(t, "small").Spent.Epsilon - after.Epsilon; d < 0.1249 || d > 0.1251 {
		t.Errorf("with the header: charged %v, want 0.125", d)
	}

	// A malformed cookie is no session: the statement needs its project named.
	bad := metadata.AppendToOutgoingContext(ts.as("rita"), "cookie", "arrow_flight_session=%%%not-base64")
	plain, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, err = plain.Execute(bad, "SELECT COUNT(*) AS n FROM booking")
	grpcCode(t, err, codes.InvalidArgument, "x-velo-project")
	if _, err := plain.Execute(metadata.AppendToOutgoingContext(bad, "x-velo-project", "wl"), "SELECT COUNT(*) AS n FROM booking"); err != nil {
		t.Errorf("with a malformed cookie and the header: %v", err)
	}

	// Closed, the session's options are gone: the session lives in its cookie (stateless
	// sessions), and the close answers with the cookie's deletion. (Whether the client's
	// cookie middleware applies it before its next call is a race in arrow-go's stream
	// middleware: a goroutine that sees the stream's context done can finish the stream
	// before the read of its end, dropping the trailer. So the deletion is checked here,
	// and a client without the cookie is the one that sent none, above.)
	var trailer metadata.MD
	if _, err := cl.CloseSession(rita, &flight.CloseSessionRequest{}, grpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	}
	deleted := false
	for _, c := range (&http.Response{Header: http.Header{"Set-Cookie": trailer.Get("set-cookie")}}).Cookies() {
		deleted = deleted || c.Name == "arrow_flight_session" && c.MaxAge < 0
	}
	if !deleted {
		t.Errorf("CloseSession's trailer %v does not delete the session cookie", trailer.Get("set-cookie"))
	}
}
