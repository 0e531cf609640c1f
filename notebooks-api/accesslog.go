package notebooksapi

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// The access log (ledger/accesslog.go): every request to the API and the DPO page is
// recorded with who, when, from where, what, on which project and the outcome, in the
// ledger's store, kept for access_log.retention (at least a year unless overridden).
// Load balancers' GET /healthz and unauthenticated GET /metrics scrapes are left out:
// they carry no identity and read no data (the request log and the metrics count them).
// DPOs export it with GET /v1/access-log and velo access-log export.

// AccessLogConfig is velo.yaml's access_log section.
type AccessLogConfig struct {
	// Retention is how long records are kept: days (400d), years (2y) or a Go duration;
	// "forever" never prunes. Default 400d; at least 365d unless AllowShortRetention.
	Retention string `yaml:"retention,omitempty"`
	// AllowShortRetention accepts a retention under a year (a test server, say).
	AllowShortRetention bool `yaml:"allow_short_retention,omitempty"`
}

// RetentionDuration is the parsed retention: ledger.DefaultAccessRetention when unset,
// negative for "forever".
func (c AccessLogConfig) RetentionDuration() (time.Duration, error) {
	s := strings.TrimSpace(c.Retention)
	var d time.Duration
	switch {
	case s == "":
		return ledger.DefaultAccessRetention, nil
	case s == "forever":
		return -1, nil
	case strings.HasSuffix(s, "d") || strings.HasSuffix(s, "y"):
		var n int
		if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != s[:len(s)-1] {
			return 0, &FieldError{"access_log.retention", fmt.Sprintf("%q: want days (400d), years (2y), a duration (9000h) or forever", s)}
		}
		d = time.Duration(n) * 24 * time.Hour
		if strings.HasSuffix(s, "y") {
			d = time.Duration(n) * 365 * 24 * time.Hour
		}
	default:
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, &FieldError{"access_log.retention", fmt.Sprintf("%q: want days (400d), years (2y), a duration (9000h) or forever", s)}
		}
	}
	if d < ledger.MinAccessRetention && !c.AllowShortRetention {
		return 0, &FieldError{"access_log.retention", fmt.Sprintf("%s is shorter than a year (365d), the least a secure processing environment keeps its access log; set access_log.allow_short_retention: true to keep less", s)}
	}
	return d, nil
}

// recordAccess queues the access record of a finished request.
func (s *Server) recordAccess(r *http.Request, info *reqInfo, route string, status int, d time.Duration) {
	if s.access == nil || route == "GET /healthz" || (route == "GET /metrics" && info.user == "") {
		return
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	code := info.code
	if code == "" && status >= 400 && info.cause != nil {
		code = asProblem(info.cause).Code
	}
	method := r.Method
	if route == "unmatched" {
		method = strings.ToUpper(method)
		if len(method) > 16 {
			method = method[:16]
		}
	}
	permit := info.permit
	if permit == "" && info.project != "" {
		// Under which data permit: the project's, as the ledger holds it now.
		if st, err := s.led.Project(info.project); err == nil {
			permit = st.PermitID
		}
	}
	s.access.Record(ledger.AccessRecord{
		Time: s.now().UTC(), RequestID: info.id, User: info.user, Role: string(info.role), Subject: info.subject, Via: info.via,
		Client: client, Method: method, Route: route, Project: info.project, Permit: permit, Status: status, Code: code,
		Millis: float64(d.Microseconds()) / 1000,
	})
}

// accessLog exports the access log (DPO only): ?format=csv|ndjson (or Accept text/csv,
// application/x-ndjson), since and until (RFC 3339 times or dates), user, project.
func (s *Server) accessLog(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	if s.access == nil {
		return problem(http.StatusNotFound, CodeNotFound, "this server keeps no access log")
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "ndjson"
		if strings.Contains(r.Header.Get("Accept"), "text/csv") {
			format = "csv"
		}
	}
	if format != "csv" && format != "ndjson" {
		p := problem(http.StatusBadRequest, CodeInvalidRequest, "format %q: want csv or ndjson", format)
		p.Field = "format"
		return p
	}
	f := ledger.AccessFilter{User: q.Get("user"), Project: q.Get("project")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(t.name)
		if v == "" {
			continue
		}
		tm, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if tm, err = time.Parse("2006-01-02", v); err != nil {
				p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s %q: want a date (2026-03-01) or an RFC 3339 time", t.name, v)
				p.Field = t.name
				return p
			}
		}
		*t.dst = tm
	}
	setProject(r, f.Project)
	s.access.Sync() // every request answered before this one is in the export
	ct := "application/x-ndjson"
	if format == "csv" {
		ct = "text/csv; charset=utf-8"
		w.Header().Set("Content-Disposition", `attachment; filename="velo-access-log.csv"`)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	if err := ledger.ExportAccess(r.Context(), s.access.Store(), f, format, w); err != nil {
		logExtra(r, "export_err", err.Error()) // the status is sent: the log says why it stopped
	}
	return nil
}
