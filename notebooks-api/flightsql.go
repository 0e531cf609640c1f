package notebooksapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	flightpb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	flightsession "github.com/apache/arrow-go/v18/arrow/flight/session"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/release"
)

// Arrow Flight SQL (velo serve --flight-sql-addr): ADBC, JDBC and BI tools connect to Velo
// as to a database, on the same DP path as POST /v1/queries.
//
//   - Authentication: the same bearer tokens, sent as the "authorization" header of every
//     call ("Bearer <token>"); failures count against the client's address as on HTTP.
//   - The project: the "x-velo-project" header, else the session option "project", else
//     the user's only project.
//   - Epsilon and delta: the SQL's OPTIONS clause (SELECT WITH DIFFERENTIAL_PRIVACY
//     OPTIONS(epsilon = 0.5) ...), else the "x-velo-epsilon" / "x-velo-delta" headers,
//     else the session options "epsilon" / "delta", else the project's default.
//   - The target: the "x-velo-target" header, else the session option "target": "data" (the
//     default) or "dummy", the dataset's dummy twin (exact, free; docs/clients.md#dummy-data).
//   - Session options (SetSessionOptions) live in the client's cookie (arrow-go's
//     stateless sessions): the server keeps nothing, and a session holds only what a
//     header could say, checked again at every statement; a malformed cookie is no
//     session.
//   - A statement is checked, charged and run when the client asks for its FlightInfo;
//     the release waits, for that user only, under a random ticket until fetched (DoGet)
//     or for flightResultTTL. Its schema and data are the HTTP API's Arrow answer (keys,
//     dp values with <col>_ci_lower, <col>_ci_upper, <col>_flags, the release in the
//     schema's metadata). Asking a statement's schema alone (GetSchema) is a dry run.
//   - Catalog calls list what the project is approved for: one catalog ("velo"), one
//     schema per project the user belongs to, the approved tables and columns.
//   - Refusals carry the API's problem code: "[sql_rejected] unknown column x (at
//     position 7)", with the gRPC code InvalidArgument, PermissionDenied,
//     Unauthenticated, ResourceExhausted (budget, rate), FailedPrecondition or Internal.

// Flight SQL limits.
const (
	flightResultTTL  = 10 * time.Minute
	flightMaxResults = 1024
	flightCatalog    = "velo"
)

type flightSQL struct {
	flightsql.BaseServer
	s       *Server
	mu      sync.Mutex
	results map[string]*flightResult
}

// flightResult is a release waiting to be fetched by the user who asked for it.
type flightResult struct {
	user    string
	rec     arrow.RecordBatch
	expires time.Time
}

type flightUserKey struct{}

// ServeFlightSQL serves Arrow Flight SQL on ln until ctx is cancelled, then stops
// gracefully (calls in flight finish, so their charges settle).
func (s *Server) ServeFlightSQL(ctx context.Context, ln net.Listener) error {
	f := &flightSQL{s: s, results: map[string]*flightResult{}}
	f.Alloc = memory.DefaultAllocator
	for id, v := range map[flightsql.SqlInfo]any{
		flightsql.SqlInfoFlightSqlServerName:     "Velo",
		flightsql.SqlInfoFlightSqlServerVersion:  "1",
		flightsql.SqlInfoFlightSqlServerReadOnly: true,
		flightsql.SqlInfoFlightSqlServerSql:      true,
	} {
		if err := f.RegisterSqlInfo(id, v); err != nil {
			return fmt.Errorf("flight sql: %w", err)
		}
	}
	sessions := recoveringMiddleware{flightsession.NewServerSessionMiddleware(flightsession.NewStatelessServerSessionManager())}
	srv := flight.NewServerWithMiddleware([]flight.ServerMiddleware{
		{Unary: f.unaryAuth, Stream: f.streamAuth},
		flight.CreateServerMiddleware(sessions),
	})
	srv.RegisterFlightService(flightsql.NewFlightServer(f))
	srv.InitListener(ln)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			srv.Shutdown()
		case <-done:
		}
	}()
	err := srv.Serve()
	close(done)
	f.mu.Lock()
	for k, r := range f.results {
		r.rec.Release()
		delete(f.results, k)
	}
	f.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// authenticate checks the bearer token of a call and puts its user in the context.
func (f *flightSQL) authenticate(ctx context.Context) (context.Context, error) {
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	key := addrKey(addr)
	if p := f.s.authFail.refuseKey(key); p != nil {
		return nil, flightError(p)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	auth := ""
	if v := md.Get("authorization"); len(v) > 0 {
		auth = v[0]
	}
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, flightError(problem(http.StatusUnauthorized, CodeUnauthorized, "send a token: the authorization header, Bearer <token>"))
	}
	if token = strings.TrimSpace(token); f.s.oidc != nil && looksLikeJWT(token) {
		return f.authenticateJWT(ctx, token, key)
	}
	u, _, ok := f.s.users.Load().lookup(token)
	if !ok {
		f.s.authFail.failedKey(key)
		return nil, flightError(problem(http.StatusUnauthorized, CodeUnauthorized, "the token is not valid: unknown, or revoked (ask for a new one)"))
	}
	noteFlightIdentity(ctx, u, "", "token")
	return context.WithValue(ctx, flightUserKey{}, u), nil
}

func (f *flightSQL) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, done := f.startAccess(ctx, info.FullMethod)
	actx, err := f.authenticate(ctx)
	if err != nil {
		done(err)
		return nil, err
	}
	resp, err := handler(actx, req)
	done(err)
	return resp, err
}

func (f *flightSQL) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, done := f.startAccess(ss.Context(), info.FullMethod)
	actx, err := f.authenticate(ctx)
	if err != nil {
		done(err)
		return err
	}
	err = handler(srv, &authedStream{ServerStream: ss, ctx: actx})
	done(err)
	return err
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authedStream) Context() context.Context { return a.ctx }

func userOf(ctx context.Context) *User {
	u, _ := ctx.Value(flightUserKey{}).(*User)
	return u
}

func header(ctx context.Context, name string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(name); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// project is the call's project: the x-velo-project header, else the session's, else the
// user's only one.
func projectOf(ctx context.Context, u *User) (string, error) {
	p := header(ctx, "x-velo-project")
	if p == "" {
		if sess, err := flightsession.GetSessionFromContext(ctx); err == nil {
			if v := sess.GetSessionOption("project"); v != nil {
				p = strings.TrimSpace(v.GetStringValue())
			}
		}
	}
	if p != "" {
		if !u.member(p) {
			return "", problem(http.StatusForbidden, CodeForbidden, "you are not a member of project %q", p)
		}
		return p, nil
	}
	if len(u.Projects) != 1 {
		return "", &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Field: "x-velo-project",
			Detail: fmt.Sprintf("you belong to %d projects: name one in the x-velo-project header", len(u.Projects))}
	}
	return u.Projects[0], nil
}

// request is the engine request for a statement of the call.
func (f *flightSQL) request(ctx context.Context, sql string, dryRun bool) (query.Request, *User, error) {
	u := userOf(ctx)
	if u == nil {
		return query.Request{}, nil, problem(http.StatusUnauthorized, CodeUnauthorized, "send a token")
	}
	if !u.Role.queries() {
		return query.Request{}, nil, problem(http.StatusForbidden, CodeForbidden, "the %s role cannot send queries", u.Role)
	}
	if strings.TrimSpace(sql) == "" {
		return query.Request{}, nil, &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: "the statement is empty", Field: "sql"}
	}
	project, err := projectOf(ctx, u)
	if err != nil {
		return query.Request{}, nil, err
	}
	req := query.Request{SQL: sql, Project: project, Actor: "user:" + u.Name, DryRun: dryRun}
	target := header(ctx, "x-velo-target")
	if target == "" {
		if sess, err := flightsession.GetSessionFromContext(ctx); err == nil {
			if v := sess.GetSessionOption("target"); v != nil {
				target = v.GetStringValue()
			}
		}
	}
	dummy, err := dummyTarget(target, "x-velo-target")
	if err != nil {
		return query.Request{}, nil, err
	}
	// A schema request (dry run) of a dummy statement is the dry run: nothing is run.
	req.Dummy = dummy && !dryRun
	for _, o := range []struct {
		header, option string
		dst            **float64
	}{{"x-velo-epsilon", "epsilon", &req.Epsilon}, {"x-velo-delta", "delta", &req.Delta}} {
		if v := header(ctx, o.header); v != "" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return query.Request{}, nil, &Problem{Status: http.StatusBadRequest, Code: CodeInvalidOptions, Field: o.header,
					Detail: fmt.Sprintf("the %s header must be a number, got %q", o.header, v)}
			}
			*o.dst = &x
		} else if x, ok := sessionNumber(ctx, o.option); ok {
			*o.dst = &x
		}
	}
	return req, u, nil
}

// run sends a statement to the engine, counted as the HTTP API's queries are.
func (f *flightSQL) run(ctx context.Context, req query.Request) (*release.Release, error) {
	f.s.queries.Add(1)
	start := time.Now()
	rel, err := f.s.eng.Query(ctx, req)
	f.s.queries.Done()
	if err != nil {
		p := asProblem(err)
		if p.Status >= 500 {
			f.s.metrics.query("failed", time.Since(start), 0)
			f.s.log.Error("flight sql query failed", "user", strings.TrimPrefix(req.Actor, "user:"), "project", req.Project, "code", p.Code, "err", err)
		} else {
			f.s.metrics.refusal(p.Code)
		}
		return nil, flightError(p)
	}
	outcome, spent := "released", rel.Epsilon
	switch {
	case rel.DryRun:
		outcome, spent = "dry_run", 0
	case rel.Dummy:
		outcome, spent = "dummy", 0
	case rel.Cached:
		outcome, spent = "cached", 0
	}
	f.s.metrics.query(outcome, time.Since(start), spent)
	f.s.log.Info("flight sql query", "user", strings.TrimPrefix(req.Actor, "user:"), "project", req.Project,
		"release_id", rel.ReleaseID, "outcome", outcome, "epsilon", rel.Epsilon, "delta", rel.Delta)
	return rel, nil
}

// recoveringMiddleware runs arrow-go's session middleware, which panics on a cookie it
// cannot decode: such a call goes on without a session.
type recoveringMiddleware struct{ inner flight.CustomServerMiddleware }

func (m recoveringMiddleware) StartCall(ctx context.Context) (out context.Context) {
	defer func() {
		if recover() != nil {
			out = ctx
		}
	}()
	return m.inner.StartCall(ctx)
}

func (m recoveringMiddleware) CallCompleted(ctx context.Context, err error) {
	defer func() { _ = recover() }()
	m.inner.CallCompleted(ctx, err)
}

// sessionNumber is a numeric session option, given as a double or as text.
func sessionNumber(ctx context.Context, name string) (float64, bool) {
	sess, err := flightsession.GetSessionFromContext(ctx)
	if err != nil {
		return 0, false
	}
	v := sess.GetSessionOption(name)
	if v == nil {
		return 0, false
	}
	return optionNumber(v)
}

func optionNumber(v *flight.SessionOptionValue) (float64, bool) {
	if _, ok := v.GetOptionValue().(*flightpb.SessionOptionValue_DoubleValue); ok {
		return v.GetDoubleValue(), true
	}
	if _, ok := v.GetOptionValue().(*flightpb.SessionOptionValue_StringValue); ok {
		x, err := strconv.ParseFloat(strings.TrimSpace(v.GetStringValue()), 64)
		return x, err == nil
	}
	return 0, false
}

// SetSessionOptions sets the session's project, epsilon and delta (any other name is
// refused by name); values are checked as the headers' are, and again at each statement.
func (f *flightSQL) SetSessionOptions(ctx context.Context, req *flight.SetSessionOptionsRequest) (*flight.SetSessionOptionsResult, error) {
	sess, err := flightsession.GetSessionFromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, "[invalid_request] no session: send the cookie the server set")
	}
	u := userOf(ctx)
	res := &flight.SetSessionOptionsResult{Errors: map[string]*flight.SetSessionOptionsResultError{}}
	fail := func(name string, v flightpb.SetSessionOptionsResult_ErrorValue) {
		res.Errors[name] = &flight.SetSessionOptionsResultError{Value: v}
	}
	for name, v := range req.GetSessionOptions() {
		switch name {
		case "project":
			p := strings.TrimSpace(v.GetStringValue())
			if p == "" || u == nil || !u.member(p) {
				fail(name, flight.SetSessionOptionsResultErrorInvalidValue)
				continue
			}
			sess.SetSessionOption(name, v)
		case "target":
			if _, err := dummyTarget(v.GetStringValue(), "target"); err != nil {
				fail(name, flight.SetSessionOptionsResultErrorInvalidValue)
				continue
			}
			sess.SetSessionOption(name, v)
		case "epsilon", "delta":
			x, ok := optionNumber(v)
			if !ok || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 || (name == "epsilon" && x == 0) || (name == "delta" && x >= 1) {
				fail(name, flight.SetSessionOptionsResultErrorInvalidValue)
				continue
			}
			sess.SetSessionOption(name, v)
		default:
			fail(name, flight.SetSessionOptionsResultErrorInvalidName)
		}
	}
	return res, nil
}

// GetSessionOptions returns the session's options.
func (f *flightSQL) GetSessionOptions(ctx context.Context, _ *flight.GetSessionOptionsRequest) (*flight.GetSessionOptionsResult, error) {
	sess, err := flightsession.GetSessionFromContext(ctx)
	if err != nil {
		return &flight.GetSessionOptionsResult{}, nil
	}
	return &flight.GetSessionOptionsResult{SessionOptions: sess.GetSessionOptions()}, nil
}

// CloseSession forgets the session's options.
func (f *flightSQL) CloseSession(ctx context.Context, _ *flight.CloseSessionRequest) (*flight.CloseSessionResult, error) {
	if sess, err := flightsession.GetSessionFromContext(ctx); err == nil {
		if err := sess.Close(); err != nil {
			return nil, flightError(err)
		}
	}
	return &flight.CloseSessionResult{Status: flight.CloseSessionResultClosed}, nil
}

// GetFlightInfoStatement checks, charges and runs the statement, and keeps its release
// for the user under a random ticket.
func (f *flightSQL) GetFlightInfoStatement(ctx context.Context, cmd flightsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if len(cmd.GetTransactionId()) > 0 {
		return nil, status.Error(codes.InvalidArgument, "[invalid_request] Velo has no transactions: it only reads")
	}
	req, u, err := f.request(ctx, cmd.GetQuery(), false)
	if err != nil {
		return nil, flightError(err)
	}
	rel, err := f.run(ctx, req)
	if err != nil {
		return nil, err
	}
	rec, err := releaseRecord(f.Alloc, rel)
	if err != nil {
		return nil, flightError(err)
	}
	handle := f.keep(u.Name, rec)
	tkt, err := flightsql.CreateStatementQueryTicket([]byte(handle))
	if err != nil {
		return nil, flightError(err)
	}
	return &flight.FlightInfo{
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: tkt}}},
		FlightDescriptor: desc,
		Schema:           flight.SerializeSchema(rec.Schema(), f.Alloc),
		TotalRecords:     rec.NumRows(),
		TotalBytes:       -1,
	}, nil
}

// GetSchemaStatement is a dry run: the release's schema, nothing read or charged.
func (f *flightSQL) GetSchemaStatement(ctx context.Context, cmd flightsql.StatementQuery, _ *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	req, _, err := f.request(ctx, cmd.GetQuery(), true)
	if err != nil {
		return nil, flightError(err)
	}
	rel, err := f.run(ctx, req)
	if err != nil {
		return nil, err
	}
	rec, err := releaseRecord(f.Alloc, rel)
	if err != nil {
		return nil, flightError(err)
	}
	defer rec.Release()
	return &flight.SchemaResult{Schema: flight.SerializeSchema(rec.Schema(), f.Alloc)}, nil
}

// DoGetStatement sends a kept release to the user who asked for it.
func (f *flightSQL) DoGetStatement(ctx context.Context, cmd flightsql.StatementQueryTicket) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	u := userOf(ctx)
	f.mu.Lock()
	r, ok := f.results[string(cmd.GetStatementHandle())]
	if ok && (u == nil || r.user != u.Name) {
		ok = false
	}
	if ok {
		r.rec.Retain()
	}
	f.mu.Unlock()
	if !ok {
		return nil, nil, status.Error(codes.NotFound, "[not_found] no such result: a ticket is good for its user, for "+flightResultTTL.String()+" (ask the statement again: a release asked before is not charged again)")
	}
	ch := make(chan flight.StreamChunk, 1)
	ch <- flight.StreamChunk{Data: r.rec}
	close(ch)
	return r.rec.Schema(), ch, nil
}

// keep stores a release for its user and returns its handle, dropping expired results
// and, beyond flightMaxResults, the oldest.
func (f *flightSQL) keep(user string, rec arrow.RecordBatch) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	handle := hex.EncodeToString(b[:])
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, r := range f.results {
		if now.After(r.expires) {
			r.rec.Release()
			delete(f.results, k)
		}
	}
	for len(f.results) >= flightMaxResults {
		oldest := ""
		for k, r := range f.results {
			if oldest == "" || r.expires.Before(f.results[oldest].expires) {
				oldest = k
			}
		}
		f.results[oldest].rec.Release()
		delete(f.results, oldest)
	}
	f.results[handle] = &flightResult{user: user, rec: rec, expires: now.Add(flightResultTTL)}
	return handle
}

func (f *flightSQL) flightInfo(desc *flight.FlightDescriptor, schema *arrow.Schema) *flight.FlightInfo {
	return &flight.FlightInfo{
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: desc.Cmd}}},
		FlightDescriptor: desc,
		Schema:           flight.SerializeSchema(schema, f.Alloc),
		TotalRecords:     -1,
		TotalBytes:       -1,
	}
}

func (f *flightSQL) GetFlightInfoCatalogs(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return f.flightInfo(desc, schema_ref.Catalogs), nil
}

func (f *flightSQL) DoGetCatalogs(context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(f.Alloc, schema_ref.Catalogs)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(flightCatalog)
	return one(schema_ref.Catalogs, b.NewRecordBatch())
}

func (f *flightSQL) GetFlightInfoSchemas(_ context.Context, _ flightsql.GetDBSchemas, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return f.flightInfo(desc, schema_ref.DBSchemas), nil
}

// DoGetDBSchemas lists the user's projects as schemas.
func (f *flightSQL) DoGetDBSchemas(ctx context.Context, cmd flightsql.GetDBSchemas) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(f.Alloc, schema_ref.DBSchemas)
	defer b.Release()
	if u := userOf(ctx); u != nil && catalogMatches(cmd.GetCatalog()) {
		for _, p := range u.Projects {
			if like(cmd.GetDBSchemaFilterPattern(), p) {
				b.Field(0).(*array.StringBuilder).Append(flightCatalog)
				b.Field(1).(*array.StringBuilder).Append(p)
			}
		}
	}
	return one(schema_ref.DBSchemas, b.NewRecordBatch())
}

func (f *flightSQL) GetFlightInfoTableTypes(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return f.flightInfo(desc, schema_ref.TableTypes), nil
}

func (f *flightSQL) DoGetTableTypes(context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(f.Alloc, schema_ref.TableTypes)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("TABLE")
	return one(schema_ref.TableTypes, b.NewRecordBatch())
}

func (f *flightSQL) GetFlightInfoTables(_ context.Context, cmd flightsql.GetTables, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if cmd.GetIncludeSchema() {
		return f.flightInfo(desc, schema_ref.TablesWithIncludedSchema), nil
	}
	return f.flightInfo(desc, schema_ref.Tables), nil
}

// DoGetTables lists, per project of the user (a schema), the tables and columns the
// project is approved for, as GET /v1/catalog does; with their Arrow schema when asked.
func (f *flightSQL) DoGetTables(ctx context.Context, cmd flightsql.GetTables) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	schema := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		schema = schema_ref.TablesWithIncludedSchema
	}
	b := array.NewRecordBuilder(f.Alloc, schema)
	defer b.Release()
	u := userOf(ctx)
	types := cmd.GetTableTypes()
	if u != nil && catalogMatches(cmd.GetCatalog()) && (len(types) == 0 || slices.Contains(types, "TABLE")) {
		full := f.s.eng.Catalog()
		for _, pid := range u.Projects {
			if !like(cmd.GetDBSchemaFilterPattern(), pid) {
				continue
			}
			st, err := f.s.led.Project(pid)
			if errors.Is(err, ledger.ErrUnknownProject) {
				continue
			}
			if err != nil {
				return nil, nil, flightError(err)
			}
			cut := filterCatalog(full, []ledger.Project{st.Project})
			for _, t := range cut.Tables {
				if !like(cmd.GetTableNameFilterPattern(), t.Name) {
					continue
				}
				b.Field(0).(*array.StringBuilder).Append(flightCatalog)
				b.Field(1).(*array.StringBuilder).Append(pid)
				b.Field(2).(*array.StringBuilder).Append(t.Name)
				b.Field(3).(*array.StringBuilder).Append("TABLE")
				if cmd.GetIncludeSchema() {
					b.Field(4).(*array.BinaryBuilder).Append(flight.SerializeSchema(tableSchema(t), f.Alloc))
				}
			}
		}
	}
	return one(schema, b.NewRecordBatch())
}

// tableSchema is a catalog table's columns as Arrow fields, typed by their SQL type.
func tableSchema(t dataset.CatalogTable) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(t.Columns))
	for _, c := range t.Columns {
		fields = append(fields, arrow.Field{Name: c.Name, Type: keyType(c.Type), Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
}

func catalogMatches(c *string) bool { return c == nil || *c == "" || *c == flightCatalog }

// like matches name against a Flight SQL filter pattern (SQL LIKE: % any run, _ one
// character); nil or empty matches everything.
func like(pattern *string, name string) bool {
	if pattern == nil || *pattern == "" {
		return true
	}
	var g strings.Builder
	for _, r := range *pattern {
		switch r {
		case '%':
			g.WriteByte('*')
		case '_':
			g.WriteByte('?')
		case '*', '?', '[', ']', '\\':
			g.WriteByte('\\')
			g.WriteRune(r)
		default:
			g.WriteRune(r)
		}
	}
	ok, err := path.Match(g.String(), name)
	return err == nil && ok
}

func one(schema *arrow.Schema, rec arrow.RecordBatch) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	ch := make(chan flight.StreamChunk, 1)
	ch <- flight.StreamChunk{Data: rec}
	close(ch)
	return schema, ch, nil
}

// flightError turns an error into a gRPC status whose message starts with the API's
// problem code in brackets; an internal error says nothing of the engine.
func flightError(err error) error {
	if _, ok := status.FromError(err); ok && !errors.As(err, new(*Problem)) {
		return err
	}
	p := asProblem(err)
	code := codes.Internal
	switch {
	case p.Status == http.StatusUnauthorized:
		code = codes.Unauthenticated
	case p.Status == http.StatusForbidden:
		code = codes.PermissionDenied
	case p.Status == http.StatusTooManyRequests, p.Code == CodeBudgetExhausted:
		code = codes.ResourceExhausted
	case p.Status == http.StatusNotFound:
		code = codes.NotFound
	case p.Status == http.StatusConflict:
		code = codes.FailedPrecondition
	case p.Status >= 400 && p.Status < 500:
		code = codes.InvalidArgument
	case p.Status == http.StatusServiceUnavailable:
		code = codes.Unavailable
	}
	detail := p.Detail
	if detail == "" {
		detail = http.StatusText(p.Status)
	}
	if p.Position != nil {
		detail += fmt.Sprintf(" (at position %d)", *p.Position)
	}
	return status.Error(code, "["+p.Code+"] "+detail)
}
