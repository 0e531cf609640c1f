package notebooksapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"maps"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/velo-fse/velo/ledger"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"num":  num,
	"frac": func(x, f float64) string { return num(x * f) },
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"date": func(t time.Time, l lang) string {
		if t.IsZero() {
			return tr(l, "date.never")
		}
		return t.UTC().Format(time.RFC3339)
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.DateOnly)
	},
	"T":         func(l lang, key string, args ...any) string { return tr(l, key, args...) },
	"pct":       percent,
	"allow":     func(a map[string][]string, l lang) string { return allowTextIn(a, l) },
	"allowSpec": allowSpec,
	"cap": func(x float64, l lang) string {
		if x == 0 {
			return tr(l, "project.no_cap")
		}
		return num(x)
	},
	"status":   statusKey,
	"validity": validity,
}).ParseFS(templateFS, "templates/*.html"))

// pageCSS is the pages' only style, allowed by its hash in the Content-Security-Policy: the
// pages load nothing from anywhere and run no script.
const pageCSS = `
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:76rem;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#f4f6f8}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:13px;white-space:pre-wrap;word-break:break-word}
.ok{color:#0b6b2b;font-weight:600}.bad{color:#a4161a;font-weight:600}.muted{color:#5b6570}
.card{border:1px solid #dfe3e8;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
meter{width:16rem;height:1.1rem}dl{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;margin:.4rem 0}dt{color:#5b6570}dd{margin:0}
form.inline{display:inline}button{font:inherit;padding:.3rem .8rem}input[type=password]{font:inherit;width:28rem;max-width:100%;padding:.3rem}
`

var pageCSP = func() string {
	h := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

// ledgerView is what the ledger page shows.
type ledgerView struct {
	L          lang
	CSS        template.CSS
	CSRF       string
	User       string
	Generated  time.Time
	Notice     string
	Verify     VerifyResult
	VerifyErr  string
	Projects   []projectView
	Pending    []ledger.PermitRequest
	Decided    []ledger.PermitRequest
	Alerts     []budgetAlert
	AlertShare float64
	SpentEps   string
	SpentDelta string
	Charges    []chargeView
	Grants     []ledger.Entry
	History    []ledger.Entry
	// Dummies are the latest dummy runs (queries answered on the dummy twin, free), newest
	// first; DummyTotal counts them all.
	Dummies    []ledger.Entry
	DummyTotal int
	Shown      int
	Total      int
	Filter     pageFilter
}

type projectView struct {
	ledger.ProjectStatus
	AllowText string
	// State is active, suspended, not_yet_valid or expired, by the server's clock.
	State string
	Chart template.HTML
}

type chargeView struct {
	ledger.Entry
	Status string
}

const maxPageCharges = 500

// ledgerPage is the DPO's page (dpopage.go has its parts): alerts, filters and exports,
// the verification of the chain, pending requests with approve and reject, every project
// with its permit, budget, budget over time and suspend, resume and grant, then the
// charges, dummy runs, grants and the permit history, in the language the browser asks for.
func (s *Server) ledgerPage(w http.ResponseWriter, r *http.Request, u *User) error {
	l := langOf(r)
	f, perr := filterOf(r)
	if perr != nil {
		return s.pageProblem(w, r, perr)
	}
	setProject(r, f.Project)
	lim := s.limits
	v := ledgerView{L: l, CSS: template.CSS(pageCSS), CSRF: csrfToken(r), User: u.Name, Generated: s.now(), Filter: f,
		AlertShare: lim.BudgetAlertShare, Notice: noticeOf(r, l)}
	res, err := s.runVerify()
	if err != nil {
		v.VerifyErr = "unread"
		if info := infoOf(r.Context()); info != nil {
			info.extra = append(info.extra, "verify_err", err.Error())
		}
	}
	v.Verify = res
	all := s.led.Entries("", 0)
	var eps, delta []float64
	now := s.now()
	for _, p := range s.led.Projects() {
		eps, delta = append(eps, p.Spent.Epsilon), append(delta, p.Spent.Delta)
		if f.Project != "" && p.ID != f.Project {
			continue
		}
		pv := projectView{ProjectStatus: p, AllowText: allowTextIn(p.Allow, l), State: projectState(p, now)}
		pv.Chart = budgetChart(p, all, lim.BudgetAlertShare, now, l)
		v.Projects = append(v.Projects, pv)
		if a, ok := alertOf(p, lim.BudgetAlertShare, l); ok {
			v.Alerts = append(v.Alerts, a)
		}
	}
	for _, rq := range s.led.Requests() {
		if f.Project != "" && rq.ID != f.Project {
			continue
		}
		if rq.Status == ledger.RequestPending {
			v.Pending = append(v.Pending, rq)
		} else {
			v.Decided = append(v.Decided, rq)
		}
	}
	// Projects over the same people compose: the DPO sees the sum (docs/privacy.md#the-guarantee).
	v.SpentEps, v.SpentDelta = decimalSum(eps), decimalSum(delta)
	entries := f.apply(all)
	settled := map[uint64]string{}
	for _, e := range all {
		switch e.Kind {
		case ledger.KindRelease:
			settled[e.ChargeSeq] = tr(l, "outcome.released")
		case ledger.KindRefund:
			settled[e.ChargeSeq] = tr(l, "outcome.refunded", e.Reason)
		}
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		switch e.Kind {
		case ledger.KindCharge:
			v.Total++
			if len(v.Charges) < maxPageCharges {
				st := settled[e.Seq]
				if st == "" {
					st = tr(l, "outcome.running")
				}
				e.Release, e.Mechanisms = nil, nil
				v.Charges = append(v.Charges, chargeView{Entry: e, Status: st})
			}
		case ledger.KindGrant:
			v.Grants = append(v.Grants, e)
		case ledger.KindDummy:
			v.DummyTotal++
			if len(v.Dummies) < maxPageCharges {
				e.Release = nil
				v.Dummies = append(v.Dummies, e)
			}
		case ledger.KindProject, ledger.KindRequest, ledger.KindApprove, ledger.KindReject, ledger.KindSuspend, ledger.KindResume:
			e.Definition = nil
			v.History = append(v.History, e)
		}
	}
	v.Shown = len(v.Charges)
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "ledger.html", v); err != nil {
		return err
	}
	w.Header().Set("Content-Language", l.Code())
	writeHTML(w, http.StatusOK, buf.Bytes())
	return nil
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	return s.renderMessage(w, r, status, msg, false)
}

// renderMessage shows the login form (back false) or a message with a link back to the
// ledger page (back true), msg translated to the page's language (loginIT, problemIT).
func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, status int, msg string, back bool) error {
	l := langOf(r)
	msg = trLogin(l, msg)
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "login.html", map[string]any{"L": l, "CSS": template.CSS(pageCSS), "Message": msg, "Back": back, "OIDC": s.oidcPageLogin()}); err != nil {
		return err
	}
	w.Header().Set("Content-Language", l.Code())
	if info := infoOf(r.Context()); info != nil && status >= 400 && info.code == "" {
		info.code = map[int]string{401: CodeUnauthorized, 403: CodeForbidden}[status]
	}
	writeHTML(w, status, buf.Bytes())
	return nil
}

func writeHTML(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func allowTextIn(allow map[string][]string, l lang) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(allow)) {
		if len(allow[t]) == 0 {
			parts = append(parts, t+" ("+tr(l, "allow.all_columns")+")")
		} else {
			parts = append(parts, t+" ("+strings.Join(allow[t], ", ")+")")
		}
	}
	return strings.Join(parts, "; ")
}

// decimalSum adds amounts as the decimals they print as, so 0.1 + 0.2 shows as 0.3.
func decimalSum(fs []float64) string {
	sum := new(big.Rat)
	for _, f := range fs {
		r, _ := new(big.Rat).SetString(num(f))
		sum.Add(sum, r)
	}
	f, _ := sum.Float64()
	return num(f)
}
