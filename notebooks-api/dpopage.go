package notebooksapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// The DPO page's work (page.go renders it): the permit workflow's forms, filters,
// exports, the budget over time and the budget alerts. The page runs no script: every
// action is a POST form, refused unless it comes from the page itself — the Origin (or
// Sec-Fetch-Site) header names this server, and the form carries the CSRF token derived
// from the session cookie, which a page on another site can neither read nor compute.
// The session cookie is SameSite=Strict besides.

// pageFilter is the page's filters: a project, a user (the entry's actor, with or without
// "user:"), and a range of days (UTC, both ends included).
type pageFilter struct {
	Project, User, From, To string
	from, to                time.Time
}

// filterOf reads the filters from the query string.
func filterOf(r *http.Request) (pageFilter, *Problem) {
	q := r.URL.Query()
	f := pageFilter{Project: strings.TrimSpace(q.Get("project")), User: strings.TrimSpace(q.Get("user")),
		From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	for _, d := range []struct {
		name, v string
		dst     *time.Time
		add     time.Duration
	}{{"from", f.From, &f.from, 0}, {"to", f.To, &f.to, 24 * time.Hour}} {
		if d.v == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s: want a date as YYYY-MM-DD, got %q", d.name, d.v)
			p.Field = d.name
			return f, p
		}
		*d.dst = t.Add(d.add)
	}
	return f, nil
}

// Query is the filters as query parameters to append to a link ("&project=wl...").
func (f pageFilter) Query() string {
	v := url.Values{}
	for k, x := range map[string]string{"project": f.Project, "user": f.User, "from": f.From, "to": f.To} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "&" + v.Encode()
}

// apply keeps the entries the filters select.
func (f pageFilter) apply(entries []ledger.Entry) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range entries {
		switch {
		case f.Project != "" && e.Project != f.Project:
		case f.User != "" && e.Actor != f.User && e.Actor != "user:"+f.User:
		case !f.from.IsZero() && e.Time.Before(f.from):
		case !f.to.IsZero() && !e.Time.Before(f.to):
		default:
			out = append(out, e)
		}
	}
	return out
}

// csrfToken is the page forms' CSRF token: a hash of the session cookie (none for a
// request authenticated by a bearer header, which a browser never sends on its own).
func csrfToken(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || r.Header.Get("Authorization") != "" {
		return ""
	}
	h := sha256.Sum256([]byte("velo/csrf\x00" + c.Value))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// projectState is active, suspended, not_yet_valid or expired at now.
func projectState(p ledger.ProjectStatus, now time.Time) string {
	switch {
	case !p.Expires.IsZero() && !now.Before(p.Expires):
		return "expired"
	case p.Suspended:
		return "suspended"
	case !p.ValidFrom.IsZero() && now.Before(p.ValidFrom):
		return "not_yet_valid"
	}
	return "active"
}

// budgetAlert is a project past the alert share of its budget.
type budgetAlert struct {
	ID, Text string
}

// alertOf reports a project that has spent at least share of its epsilon or its delta.
func alertOf(p ledger.ProjectStatus, share float64, l lang) (budgetAlert, bool) {
	used := func(spent, total float64) float64 {
		if total <= 0 {
			return 0
		}
		return spent / total
	}
	e, d := used(p.Spent.Epsilon, p.Total.Epsilon), used(p.Spent.Delta, p.Total.Delta)
	if e < share && d < share {
		return budgetAlert{}, false
	}
	if e >= d {
		return budgetAlert{ID: p.ID, Text: tr(l, "alerts.epsilon", p.ID, percent(e), num(p.Spent.Epsilon), num(p.Total.Epsilon), percent(share))}, true
	}
	return budgetAlert{ID: p.ID, Text: tr(l, "alerts.delta", p.ID, percent(d), num(p.Spent.Delta), num(p.Total.Delta), percent(share))}, true
}

// percent writes a share as a percentage to one decimal: 0.8333 as 83.3%.
func percent(x float64) string {
	return num(math.Round(x*1000)/10) + "%"
}

// budgetChart draws a project's epsilon over time as inline SVG (the page's CSP allows
// it: no script, no style): the total (creation budget plus grants) and the spend (charges
// less refunds) as steps, from the project's creation to now, with the alert line.
func budgetChart(p ledger.ProjectStatus, entries []ledger.Entry, share float64, now time.Time, l lang) template.HTML {
	type point struct {
		t            time.Time
		total, spent float64
	}
	var pts []point
	var total, spent float64
	cost := map[uint64]float64{}
	for _, e := range entries {
		if e.Project != p.ID {
			continue
		}
		switch e.Kind {
		case ledger.KindProject, ledger.KindApprove:
			if e.Definition != nil {
				total = e.Definition.EpsilonBudget
			}
		case ledger.KindGrant:
			total += e.Epsilon
		case ledger.KindCharge:
			spent += e.Epsilon
			cost[e.Seq] = e.Epsilon
		case ledger.KindRefund:
			spent -= cost[e.ChargeSeq]
		default:
			continue
		}
		pts = append(pts, point{e.Time, total, spent})
	}
	if len(pts) == 0 {
		return ""
	}
	const w, h, left, right, top, bottom = 640.0, 180.0, 48.0, 8.0, 10.0, 24.0
	t0, t1 := pts[0].t, pts[len(pts)-1].t
	if now.After(t1) {
		t1 = now
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Minute)
	}
	ymax := 0.0
	for _, q := range pts {
		ymax = max(ymax, q.total, q.spent)
	}
	if ymax <= 0 {
		ymax = 1
	}
	x := func(t time.Time) float64 {
		return left + (w-left-right)*float64(t.Sub(t0))/float64(t1.Sub(t0))
	}
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/ymax) }
	steps := func(val func(point) float64) string {
		var b strings.Builder
		for i, q := range pts {
			if i > 0 {
				fmt.Fprintf(&b, " %.1f,%.1f", x(q.t), y(val(pts[i-1])))
			}
			fmt.Fprintf(&b, " %.1f,%.1f", x(q.t), y(val(q)))
		}
		fmt.Fprintf(&b, " %.1f,%.1f", w-right, y(val(pts[len(pts)-1])))
		return strings.TrimSpace(b.String())
	}
	last := pts[len(pts)-1]
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="budget-chart" id="chart-%s" role="img" viewBox="0 0 %g %g" width="%g" height="%g" xmlns="http://www.w3.org/2000/svg">`, esc(p.ID), w, h, w, h)
	fmt.Fprintf(&b, `<title>%s</title>`, esc(tr(l, "chart.title", p.ID, num(last.spent), num(last.total))))
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#8a939c"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#8a939c"/>`, left, top, left, h-bottom)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%s</text>`, left-4, top+8, num(ymax))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">0</text>`, left-4, h-bottom)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11">%s</text>`, left, h-6, t0.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%s</text>`, w-right, h-6, t1.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, `<polyline class="alert-line" points="%s" fill="none" stroke="#d08c00" stroke-dasharray="4 3"/>`, steps(func(q point) float64 { return q.total * share }))
	fmt.Fprintf(&b, `<polyline class="total-line" points="%s" fill="none" stroke="#1f5fa8" stroke-width="2"/>`, steps(func(q point) float64 { return q.total }))
	fmt.Fprintf(&b, `<polyline class="spent-line" points="%s" fill="none" stroke="#a4161a" stroke-width="2"/>`, steps(func(q point) float64 { return q.spent }))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" fill="#1f5fa8">%s</text>`, left+6, top+10, esc(tr(l, "chart.total")))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" fill="#a4161a">%s</text>`, left+6, top+24, esc(tr(l, "chart.spent")))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built above from numbers and escaped text
}

// allowSpec writes an allow list as the approve form's text: "booking; person:region,sex".
func allowSpec(allow map[string][]string) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(allow)) {
		if len(allow[t]) == 0 {
			parts = append(parts, t)
		} else {
			parts = append(parts, t+":"+strings.Join(allow[t], ","))
		}
	}
	return strings.Join(parts, "; ")
}

// parseAllowSpec reads allowSpec's form back.
func parseAllowSpec(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		table, cols, _ := strings.Cut(part, ":")
		table = strings.TrimSpace(table)
		if table == "" {
			return nil, fmt.Errorf("%q names no table", part)
		}
		list := []string{}
		for c := range strings.SplitSeq(cols, ",") {
			if c = strings.TrimSpace(c); c != "" {
				list = append(list, c)
			}
		}
		out[table] = list
	}
	return out, nil
}

// noticeOf is the line the page shows after an action redirected to it (?done=).
func noticeOf(r *http.Request, l lang) string {
	q := r.URL.Query()
	done, id := q.Get("done"), q.Get("id")
	switch done {
	case "approve", "reject", "suspend", "resume", "grant":
		return tr(l, "done."+done, id)
	}
	return ""
}

// pageAction runs one of the page's forms (DPO only, from the page itself): approve or
// reject a request, suspend, resume or grant to a project. It redirects back to the page
// with a notice, or shows what was wrong with a link back.
func (s *Server) pageAction(w http.ResponseWriter, r *http.Request, u *User) error {
	fail := func(p *Problem) error { return s.pageProblem(w, r, p) }
	if !sameOrigin(r) {
		return fail(problem(http.StatusForbidden, CodeForbidden, "the form must be sent from this server's own page"))
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return fail(problem(http.StatusBadRequest, CodeInvalidRequest, "the form could not be read"))
	}
	form := r.PostForm
	if r.Header.Get("Authorization") == "" && (csrfToken(r) == "" || form.Get("csrf") != csrfToken(r)) {
		return fail(problem(http.StatusForbidden, CodeForbidden, "the form must be sent from this server's own page"))
	}
	action, id, reason := form.Get("action"), strings.TrimSpace(form.Get("project")), strings.TrimSpace(form.Get("reason"))
	setProject(r, id)
	logExtra(r, "action", action)
	ctx, actor := r.Context(), "user:"+u.Name
	number := func(name string) (*float64, *Problem) {
		v := strings.TrimSpace(form.Get(name))
		if v == "" {
			return nil, nil
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s: want a number, got %q", name, v)
			p.Field = name
			return nil, p
		}
		return &x, nil
	}
	var err error
	switch action {
	case "approve":
		var a ApproveRequest
		a.Reason = reason
		if a.Allow, err = parseAllowSpec(form.Get("allow")); err != nil {
			p := problem(http.StatusBadRequest, CodeInvalidRequest, "allow: %s", err.Error())
			p.Field = "allow"
			return fail(p)
		}
		var p *Problem
		if a.EpsilonBudget, p = number("epsilon_budget"); p != nil {
			return fail(p)
		}
		if a.DeltaBudget, p = number("delta_budget"); p != nil {
			return fail(p)
		}
		if v := strings.TrimSpace(form.Get("expires")); v != "" {
			t, perr := time.Parse(time.DateOnly, v)
			if perr != nil {
				p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s: want a date as YYYY-MM-DD, got %q", "expires", v)
				p.Field = "expires"
				return fail(p)
			}
			t = t.Add(24 * time.Hour) // through the end of that day, as velo project create --expires
			a.Expires = &t
		}
		_, err = s.approve(ctx, u, id, a)
	case "reject":
		err = s.led.RejectRequest(ctx, actor, id, reason)
	case "suspend", "resume":
		if _, err = s.led.Project(id); err == nil {
			if action == "suspend" {
				err = s.led.Suspend(ctx, actor, id, reason)
			} else {
				err = s.led.Resume(ctx, actor, id, reason)
			}
		}
	case "grant":
		eps, p := number("epsilon")
		if p != nil {
			return fail(p)
		}
		delta, p := number("delta")
		if p != nil {
			return fail(p)
		}
		var add ledger.Budget
		if eps != nil {
			add.Epsilon = *eps
		}
		if delta != nil {
			add.Delta = *delta
		}
		if _, err = s.led.Project(id); err == nil {
			err = s.led.Grant(ctx, actor, id, add, reason)
		}
	default:
		p := problem(http.StatusBadRequest, CodeInvalidRequest, "unknown action %q", action)
		p.Field = "action"
		return fail(p)
	}
	if err != nil {
		return fail(asProblem(err))
	}
	http.Redirect(w, r, "/ledger?done="+action+"&id="+url.QueryEscape(id)+"#project-"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// pageProblem shows a problem on the page's own terms: its detail in the page's language,
// with a link back to the ledger page.
func (s *Server) pageProblem(w http.ResponseWriter, r *http.Request, p *Problem) error {
	if info := infoOf(r.Context()); info != nil {
		info.code, info.cause = p.Code, p.cause
	}
	msg := trDetail(langOf(r), p)
	if p.field != "" {
		msg = trField(langOf(r), p.Field, p.field)
	}
	return s.renderMessage(w, r, p.Status, msg, true)
}

// pageExport sends the ledger's entries as CSV or NDJSON (the filters apply), or the
// latest signed checkpoint with its verifier key, as a download.
func (s *Server) pageExport(w http.ResponseWriter, r *http.Request, u *User) error {
	f, p := filterOf(r)
	if p != nil {
		return s.pageProblem(w, r, p)
	}
	setProject(r, f.Project)
	format := r.URL.Query().Get("format")
	logExtra(r, "format", format)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	stamp := s.now().UTC().Format("20060102T150405Z")
	switch format {
	case "csv", "ndjson":
		entries := f.apply(s.led.Entries("", 0))
		if format == "csv" {
			h.Set("Content-Type", "text/csv; charset=utf-8")
			h.Set("Content-Disposition", `attachment; filename="velo-ledger-`+stamp+`.csv"`)
			return ledger.WriteCSV(w, entries)
		}
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="velo-ledger-`+stamp+`.ndjson"`)
		return ledger.WriteNDJSON(w, entries)
	case "checkpoint":
		cp, err := s.led.LatestCheckpoint()
		if err != nil {
			return s.pageProblem(w, r, asProblem(err))
		}
		b, err := json.MarshalIndent(cp, "", "  ")
		if err != nil {
			return err
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Disposition", `attachment; filename="velo-checkpoint-`+strconv.FormatUint(cp.Entries, 10)+`.json"`)
		_, _ = w.Write(append(b, '\n'))
		return nil
	}
	q := problem(http.StatusBadRequest, CodeInvalidRequest, "format: want csv, ndjson or checkpoint, got %q", format)
	q.Field = "format"
	return s.pageProblem(w, r, q)
}

// validity writes a permit's validity: "from – to", an open end in words.
func validity(from, to time.Time, l lang) string {
	a, b := tr(l, "validity.from_start"), tr(l, "validity.no_end")
	if !from.IsZero() {
		a = from.UTC().Format(time.RFC3339)
	}
	if !to.IsZero() {
		b = to.UTC().Format(time.RFC3339)
	}
	return a + " – " + b
}
