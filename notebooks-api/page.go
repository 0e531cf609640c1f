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
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339)
	},
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
	CSS        template.CSS
	User       string
	Generated  time.Time
	Verify     VerifyResult
	VerifyErr  string
	Projects   []projectView
	SpentEps   string
	SpentDelta string
	Charges    []chargeView
	Grants     []ledger.Entry
	// Dummies are the latest dummy runs (queries answered on the dummy twin, free), newest
	// first; DummyTotal counts them all.
	Dummies    []ledger.Entry
	DummyTotal int
	Shown      int
	Total      int
	Filter     string
}

type projectView struct {
	ledger.ProjectStatus
	AllowText string
}

type chargeView struct {
	ledger.Entry
	Status string
}

const maxPageCharges = 500

// ledgerPage is the DPO's page: projects with purpose, legal basis and budget bars, the
// total spent across projects, every charge with its time, user, SQL and epsilon, and the
// result of verifying the chain.
func (s *Server) ledgerPage(w http.ResponseWriter, r *http.Request, u *User) error {
	filter := r.URL.Query().Get("project")
	setProject(r, filter)
	v := ledgerView{CSS: template.CSS(pageCSS), User: u.Name, Generated: s.now(), Filter: filter}
	res, err := s.runVerify()
	if err != nil {
		v.VerifyErr = "the ledger could not be read for verification; the operator's log has the details"
		if info := infoOf(r.Context()); info != nil {
			info.extra = append(info.extra, "verify_err", err.Error())
		}
	}
	v.Verify = res
	var eps, delta []float64
	for _, p := range s.led.Projects() {
		eps, delta = append(eps, p.Spent.Epsilon), append(delta, p.Spent.Delta)
		if filter != "" && p.ID != filter {
			continue
		}
		v.Projects = append(v.Projects, projectView{ProjectStatus: p, AllowText: allowText(p.Allow)})
	}
	// Projects over the same people compose: the DPO sees the sum (docs/privacy.md#the-guarantee).
	v.SpentEps, v.SpentDelta = decimalSum(eps), decimalSum(delta)
	entries := s.led.Entries(filter, 0)
	settled := map[uint64]string{}
	for _, e := range entries {
		switch e.Kind {
		case ledger.KindRelease:
			settled[e.ChargeSeq] = "released"
		case ledger.KindRefund:
			settled[e.ChargeSeq] = "refunded: " + e.Reason
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
					st = "charged, no release (running, or failed while running)"
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
		}
	}
	v.Shown = len(v.Charges)
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "ledger.html", v); err != nil {
		return err
	}
	writeHTML(w, http.StatusOK, buf.Bytes())
	return nil
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "login.html", map[string]any{"CSS": template.CSS(pageCSS), "Message": msg, "OIDC": s.oidcPageLogin()}); err != nil {
		return err
	}
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

func allowText(allow map[string][]string) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(allow)) {
		if len(allow[t]) == 0 {
			parts = append(parts, t+" (all columns)")
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
