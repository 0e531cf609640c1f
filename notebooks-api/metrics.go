package notebooksapi

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// metrics are counters and latency histograms in the Prometheus text format, written by
// hand. Labels hold routes, methods, status codes, outcomes and problem codes only (and
// project ids, shown to the DPO only): never users or anything from a request.
type metrics struct {
	mu       sync.Mutex
	requests map[[3]string]uint64 // route, method, status
	httpLat  map[string]*histogram
	queries  map[string]uint64 // outcome: released, cached, dry_run, dummy, failed
	refusals map[string]uint64 // problem code
	queryLat *histogram
	epsilon  float64 // spent by fresh releases since start
}

var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(latencyBuckets))
	}
	if i, _ := slices.BinarySearch(latencyBuckets, v); i < len(latencyBuckets) {
		h.counts[i]++
	}
	h.sum += v
	h.n++
}

func (h *histogram) write(b *bytes.Buffer, name, labels string) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, le := range latencyBuckets {
		if h.counts != nil {
			cum += h.counts[i]
		}
		fmt.Fprintf(b, "%s_bucket{%s%sle=%q} %d\n", name, labels, sep, num(le), cum)
	}
	fmt.Fprintf(b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, h.n)
	braces := ""
	if labels != "" {
		braces = "{" + labels + "}"
	}
	fmt.Fprintf(b, "%s_sum%s %s\n", name, braces, num(h.sum))
	fmt.Fprintf(b, "%s_count%s %d\n", name, braces, h.n)
}

func newMetrics() *metrics {
	return &metrics{requests: map[[3]string]uint64{}, httpLat: map[string]*histogram{}, queries: map[string]uint64{}, refusals: map[string]uint64{}, queryLat: &histogram{}}
}

func (m *metrics) request(route, method string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[3]string{route, method, strconv.Itoa(status)}]++
	h := m.httpLat[route]
	if h == nil {
		h = &histogram{}
		m.httpLat[route] = h
	}
	h.observe(d.Seconds())
}

func (m *metrics) query(outcome string, d time.Duration, epsilon float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queries[outcome]++
	m.queryLat.observe(d.Seconds())
	m.epsilon += epsilon
}

func (m *metrics) refusal(code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refusals[code]++
}

// metricsText serves /metrics. Without a token it shows the process's health only: HTTP
// requests and latencies by route, and the query slots. Privacy figures need a token:
// query outcomes, refusals and engine latency for the dpo and admin roles (operations),
// and epsilon spent and left, in total and per project, for the dpo role only — they
// are the DPO's to read (docs/api.md). A token that is sent must be valid.
func (s *Server) metricsText(w http.ResponseWriter, r *http.Request) error {
	var role Role
	if r.Header.Get("Authorization") != "" {
		u, err := s.bearer(r)
		if err != nil {
			return err
		}
		role = u.Role
	}
	m := s.metrics
	var b bytes.Buffer
	m.mu.Lock()
	b.WriteString("# HELP velo_http_requests_total HTTP requests by route pattern, method and status.\n# TYPE velo_http_requests_total counter\n")
	keys := slices.SortedFunc(maps.Keys(m.requests), func(a, b [3]string) int {
		return strings.Compare(strings.Join(a[:], "\x00"), strings.Join(b[:], "\x00"))
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "velo_http_requests_total{route=%q,method=%q,code=%q} %d\n", k[0], k[1], k[2], m.requests[k])
	}
	b.WriteString("# HELP velo_http_request_duration_seconds HTTP request latency by route pattern.\n# TYPE velo_http_request_duration_seconds histogram\n")
	for _, route := range slices.Sorted(maps.Keys(m.httpLat)) {
		m.httpLat[route].write(&b, "velo_http_request_duration_seconds", fmt.Sprintf("route=%q", route))
	}
	if role == RoleDPO || role == RoleAdmin {
		b.WriteString("# HELP velo_queries_total Queries answered, by outcome: released (fresh, charged), cached (free), dry_run, dummy (on the dummy twin, free), failed (after the charge).\n# TYPE velo_queries_total counter\n")
		for _, o := range []string{"released", "cached", "dry_run", "dummy", "failed"} {
			fmt.Fprintf(&b, "velo_queries_total{outcome=%q} %d\n", o, m.queries[o])
		}
		b.WriteString("# HELP velo_query_refusals_total Queries refused before any charge, by problem code.\n# TYPE velo_query_refusals_total counter\n")
		for _, c := range slices.Sorted(maps.Keys(m.refusals)) {
			fmt.Fprintf(&b, "velo_query_refusals_total{code=%q} %d\n", c, m.refusals[c])
		}
		b.WriteString("# HELP velo_query_duration_seconds Engine time of answered queries.\n# TYPE velo_query_duration_seconds histogram\n")
		m.queryLat.write(&b, "velo_query_duration_seconds", "")
	}
	if role == RoleDPO {
		b.WriteString("# HELP velo_epsilon_spent_total Epsilon charged by fresh releases since the server started (all projects).\n# TYPE velo_epsilon_spent_total counter\n")
		fmt.Fprintf(&b, "velo_epsilon_spent_total %s\n", num(m.epsilon))
	}
	m.mu.Unlock()
	if role == RoleDPO {
		b.WriteString("# HELP velo_project_epsilon_spent Epsilon spent by each project, from the ledger.\n# TYPE velo_project_epsilon_spent gauge\n")
		projects := s.led.Projects()
		for _, p := range projects {
			fmt.Fprintf(&b, "velo_project_epsilon_spent{project=%q} %s\n", p.ID, num(p.Spent.Epsilon))
		}
		b.WriteString("# HELP velo_project_epsilon_left Epsilon left to each project, from the ledger.\n# TYPE velo_project_epsilon_left gauge\n")
		for _, p := range projects {
			fmt.Fprintf(&b, "velo_project_epsilon_left{project=%q} %s\n", p.ID, num(p.Left.Epsilon))
		}
	}
	inUse, limit := s.eng.Slots()
	fmt.Fprintf(&b, "# HELP velo_queries_in_flight Queries holding a slot now.\n# TYPE velo_queries_in_flight gauge\nvelo_queries_in_flight %d\n", inUse)
	fmt.Fprintf(&b, "# HELP velo_query_slots Concurrent query limit.\n# TYPE velo_query_slots gauge\nvelo_query_slots %d\n", limit)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
	return nil
}
