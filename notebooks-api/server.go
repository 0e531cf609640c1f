package notebooksapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/release"
)

// Engine is what the server needs of the query engine (query.Engine). The engine bounds
// the queries that read data at once and refuses the overflow with a *query.BusyError,
// which the server answers with 429; Slots reports its load for /metrics.
type Engine interface {
	Query(ctx context.Context, req query.Request) (*release.Release, error)
	Catalog() *dataset.Catalog
	Slots() (inUse, limit int)
}

// Ledger is what the server needs of the ledger (ledger.Ledger), which it holds open, and
// so locked, for its lifetime.
type Ledger interface {
	Project(id string) (ledger.ProjectStatus, error)
	Projects() []ledger.ProjectStatus
	Entries(project string, sinceSeq uint64) []ledger.Entry
	CreateProject(ctx context.Context, actor string, p ledger.Project) error
	Grant(ctx context.Context, actor, project string, add ledger.Budget, reason string) error
	permitLedger // permits.go
}

// Options are a Server's dependencies.
type Options struct {
	Engine Engine
	Ledger Ledger
	// Verify checks the ledger's chain and checkpoints (ledger.Verify on the state
	// directory; it reads without the lock).
	Verify func() (ledger.VerifyReport, error)
	Users  []User
	Limits Limits
	// CookieSecure marks the ledger page's session cookie Secure (behind TLS).
	CookieSecure bool
	// OIDC, when set, takes JWT bearer tokens from the organisation's OpenID provider and
	// logs the DPO page in through it (oidc.go, oidclogin.go).
	OIDC *OIDCConfig
	// AccessLog, when set, records every request (accesslog.go).
	AccessLog *ledger.AccessWriter
	Logger    *slog.Logger
	Now       func() time.Time
}

// Server is the HTTP API. It is an http.Handler; Serve runs it with timeouts and a
// graceful shutdown.
type Server struct {
	eng      Engine
	led      Ledger
	verifyFn func() (ledger.VerifyReport, error)
	limits   Limits
	secure   bool
	log      *slog.Logger
	now      func() time.Time

	oidc      *oidcAuth // nil without Options.OIDC
	oidcFlows oidcFlows // the organisation's logins in progress
	access    *ledger.AccessWriter
	users     atomic.Pointer[userTable]
	sessions  *sessionStore
	authFail  *authLimiter
	metrics   *metrics
	queries   sync.WaitGroup // engine calls in flight, waited for at shutdown

	mux *http.ServeMux
}

// New makes a Server.
func New(o Options) (*Server, error) {
	if o.Engine == nil || o.Ledger == nil || o.Verify == nil {
		return nil, errors.New("notebooksapi: Engine, Ledger and Verify are required")
	}
	s := &Server{
		eng: o.Engine, led: o.Ledger, verifyFn: o.Verify, limits: o.Limits.withDefaults(), secure: o.CookieSecure,
		log: o.Logger, now: o.Now, access: o.AccessLog,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.SetUsers(o.Users)
	if o.OIDC != nil {
		if err := o.OIDC.validate(); err != nil {
			return nil, err
		}
		s.oidc = newOIDCAuth(*o.OIDC, s.now)
	}
	s.sessions = newSessionStore(s.limits.SessionTTL, s.now)
	s.authFail = newAuthLimiter(s.limits.MaxAuthFailures, s.limits.AuthFailureWindow, s.now, s.log)
	s.metrics = newMetrics()
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, rt.handler)
	}
	return s, nil
}

// SetUsers replaces the users and their tokens (a config reload). Sessions made from a
// token that is no longer listed end with it.
func (s *Server) SetUsers(users []User) { s.users.Store(newUserTable(users)) }

type route struct {
	pattern string
	handler http.Handler
}

// routes is every route the server has; openapi.json documents exactly these (a test
// holds the two together).
func (s *Server) routes() []route {
	return []route{
		{"POST /v1/queries", s.h(s.query)},
		{"POST /v1/marginals", s.h(s.marginals)},
		{"POST /v1/synthetic", s.h(s.synthetic)},
		{"GET /v1/catalog", s.h(s.catalog)},
		{"GET /v1/projects", s.h(s.listProjects)},
		{"POST /v1/projects", s.h(s.createProject)},
		{"GET /v1/projects/{id}", s.h(s.getProject)},
		{"GET /v1/projects/{id}/history", s.h(s.history)},
		{"GET /v1/projects/{id}/releases/{release_id}", s.h(s.getRelease)},
		{"POST /v1/projects/{id}/grants", s.h(s.grant)},
		{"GET /v1/ledger", s.h(s.ledgerEntries)},
		{"GET /v1/ledger/verify", s.h(s.verify)},
		{"GET /v1/access-log", s.h(s.accessLog)},
		{"GET /v1/me", s.h(s.me)},
		{"POST /v1/login-codes", s.h(s.loginCode)},
		{"GET /ledger", s.page(s.ledgerPage)},
		// The data permit's workflow and the DPO page's actions (permits.go, dpopage.go).
		{"GET /v1/project-requests", s.h(s.listRequests)},
		{"POST /v1/project-requests", s.h(s.requestProject)},
		{"POST /v1/project-requests/{id}/approve", s.h(s.approveRequest)},
		{"POST /v1/project-requests/{id}/reject", s.h(s.rejectRequest)},
		{"POST /v1/projects/{id}/suspend", s.h(s.suspendProject)},
		{"POST /v1/projects/{id}/resume", s.h(s.resumeProject)},
		{"GET /v1/ledger/checkpoint", s.h(s.latestCheckpoint)},
		{"POST /ledger/actions", s.page(s.pageAction)},
		{"GET /ledger/export", s.page(s.pageExport)},
		{"GET /login", s.public(s.loginForm)},
		{"POST /login", s.public(s.login)},
		{"POST /logout", s.public(s.logout)},
		{"GET /login/oidc", s.public(s.oidcStart)},
		{"GET /login/oidc/callback", s.public(s.oidcCallback)},
		{"GET /healthz", s.public(s.healthz)},
		{"GET /metrics", s.public(s.metricsText)},
		{"GET /openapi.json", s.public(s.openapi)},
	}
}

// reqInfo is what the request log records; handlers fill in the project and extras.
type reqInfo struct {
	id      string
	user    string
	role    Role
	project string
	subject string // the OIDC subject, for the access log
	permit  string // the data permit of the project, for the access log
	via     string // how the caller authenticated: token, jwt, session, oidc-session
	code    string
	cause   error
	extra   []any
}

type infoKey struct{}

func infoOf(ctx context.Context) *reqInfo {
	i, _ := ctx.Value(infoKey{}).(*reqInfo)
	return i
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP logs and measures every request, and answers unknown routes and methods
// with problems.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &reqInfo{id: randomID()}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	sw := &statusWriter{ResponseWriter: w}
	h := sw.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Request-Id", info.id)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			info.cause = fmt.Errorf("panic: %v", v)
			if sw.status == 0 {
				writeProblem(sw, r, problem(http.StatusInternalServerError, CodeInternal, "internal error; the operator's log has the details"))
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.request(route, r.Method, status, d)
		s.recordAccess(r, info, route, status, d)
		// Never the Authorization header, a cookie or the query string (a login code).
		attrs := []any{"request_id", info.id, "method", r.Method, "route", route, "status", status,
			"duration_ms", float64(d.Microseconds()) / 1000, "bytes", sw.bytes,
			"user", info.user, "role", string(info.role), "project", info.project}
		if info.code != "" {
			attrs = append(attrs, "code", info.code)
		}
		attrs = append(attrs, info.extra...)
		if status >= 500 {
			if info.cause != nil {
				attrs = append(attrs, "err", info.cause.Error())
			}
			s.log.Error("request", attrs...)
			return
		}
		s.log.Info("request", attrs...)
	}()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unmatched(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// unmatched answers a request no route takes: 405 with Allow when the path exists for
// other methods, else 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.mux.Handler(r2); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, r, problem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed here; allowed: %s", r.Method, strings.Join(allow, ", ")))
		return
	}
	writeProblem(w, r, problem(http.StatusNotFound, CodeNotFound, "no such route; GET /openapi.json lists them"))
}

// apiHandler is an authenticated handler: it gets the caller and returns an error that
// the adapter turns into a problem.
type apiHandler func(w http.ResponseWriter, r *http.Request, u *User) error

// h adapts an API handler: bearer authentication, then the one place errors become
// problems and causes reach the log.
func (s *Server) h(f apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		u, err := s.bearer(r)
		if err == nil {
			err = f(w, r, u)
		}
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

// public adapts a handler that needs no token.
func (s *Server) public(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return publicHandler(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// publicHandler is a route that asks for no credentials (a handler may read a token it is
// sent, as /metrics does); its operation in openapi.json says so with `security`.
type publicHandler func(w http.ResponseWriter, r *http.Request)

func (f publicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { f(w, r) }

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := asProblem(err)
	if info := infoOf(r.Context()); info != nil {
		info.cause = err
	}
	writeProblem(w, r, p)
}

// bearer authenticates the Authorization header; an address with too many failures is
// refused first (authlimit.go).
func (s *Server) bearer(r *http.Request) (*User, error) {
	if p := s.authFail.refuse(r); p != nil {
		return nil, p
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, problem(http.StatusUnauthorized, CodeUnauthorized, "send a token: Authorization: Bearer <token>")
	}
	if token = strings.TrimSpace(token); s.oidc != nil && looksLikeJWT(token) {
		return s.bearerJWT(r, token)
	}
	u, _, ok := s.users.Load().lookup(token)
	if !ok {
		s.authFail.failed(r)
		return nil, problem(http.StatusUnauthorized, CodeUnauthorized, "the token is not valid: unknown, or revoked (ask for a new one)")
	}
	s.identify(r, u)
	setSubject(r, "", "token")
	return u, nil
}

func setSubject(r *http.Request, subject, via string) {
	if info := infoOf(r.Context()); info != nil {
		info.subject, info.via = subject, via
	}
}

func (s *Server) identify(r *http.Request, u *User) {
	if info := infoOf(r.Context()); info != nil {
		info.user, info.role = u.Name, u.Role
	}
}

func setProject(r *http.Request, id string) {
	if info := infoOf(r.Context()); info != nil {
		info.project = id
	}
}

func logExtra(r *http.Request, kv ...any) {
	if info := infoOf(r.Context()); info != nil {
		info.extra = append(info.extra, kv...)
	}
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (within limits.shutdown_timeout) and waits for
// every engine call, whose charge must be settled, before returning. The caller then
// closes the engine and the ledger (which writes a checkpoint).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.limits.ReadTimeout,
		WriteTimeout:      s.limits.ReadTimeout + s.limits.QueueTimeout + s.limits.QueryTimeout + 30*time.Second,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.limits.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.limits.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("graceful shutdown: %w", err), srv.Close())
	}
	s.queries.Wait()
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// decodeJSON reads a JSON request body of at most limits.max_request_bytes into v,
// refusing unknown fields and trailing data.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		if mt = strings.TrimSpace(strings.ToLower(mt)); mt != "application/json" {
			return problem(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "send the request body as application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.limits.MaxRequestBytes))
	if err == nil {
		// Exact names, no duplicate keys: what a reviewer reads is what Velo decodes.
		err = checkStrictJSON(body, v)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil && dec.More() {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	var sje *strictJSONError
	if errors.As(err, &sje) {
		p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s", sje.Detail)
		p.Field = sje.Field
		return p
	}
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return problem(http.StatusRequestEntityTooLarge, CodeTooLarge, "the request body is larger than %d bytes", s.limits.MaxRequestBytes)
	case errors.As(err, &ute):
		p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s", typeMismatch(ute))
		p.Field = ute.Field
		return p
	case errors.As(err, &se):
		return problem(http.StatusBadRequest, CodeInvalidRequest, "the body is not valid JSON (at byte %d)", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := problem(http.StatusBadRequest, CodeInvalidRequest, "unknown field %q", name)
		p.Field = name
		return p
	case errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, CodeInvalidRequest, "the request body is empty: send a JSON object")
	}
	return problem(http.StatusBadRequest, CodeInvalidRequest, "the body is not a valid JSON object")
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// typeMismatch says, for people, what a field of a request body must be and what was sent
// instead: "epsilon must be a number, got a string (write 0.5, not \"0.5\")".
func typeMismatch(e *json.UnmarshalTypeError) string {
	field := e.Field
	if field == "" {
		field = "the body"
	}
	want := jsonKind(e.Type)
	if field == "bounds" && e.Type.Kind() == reflect.Array {
		// encoding/json names the map, not the entry: {"avg_wait": [0, 365]}.
		field, want = "each entry of bounds", want+` ({"avg_wait": [0, 365]})`
	}
	got := e.Value // "string", "number", "number 2.5", "bool", "array", "object"
	switch {
	case strings.HasPrefix(got, "number") && (want == "an integer" || want == "a whole number"):
		return fmt.Sprintf("%s must be an integer, got %s", field, strings.TrimPrefix(got, "number "))
	case got == "bool":
		got = "true or false"
	case got == "string" && want == "a number":
		return fmt.Sprintf("%s must be a number, got a string: write the number without quotes (\"%s\": 0.5, not \"0.5\")", field, field)
	case got == "array" || got == "object":
		got = "an " + got
	case got == "string" || strings.HasPrefix(got, "number"):
		got = "a " + strings.Fields(got)[0]
	}
	return fmt.Sprintf("%s must be %s, got %s", field, want, got)
}

// jsonKind names the JSON a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Array:
		return fmt.Sprintf("an array of %d %ss", t.Len(), strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "an "), "a "))
	case reflect.Slice:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a JSON " + t.Kind().String()
}
