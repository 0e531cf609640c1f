package notebooksapi_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/velo-fse/velo/ledger"
)

const secondSQL = "SELECT service_code, COUNT(*) AS n FROM booking GROUP BY service_code"

// The words the DPO reads, in each language (the catalog's, spelled out here so that a
// change of the catalog is seen).
var workflowText = map[string]struct {
	accept, requests, pending, approved, suspendedNotice, resumedNotice, suspendedState, activeState, alert, title403, detail string
}{
	"it": {"it-IT,it;q=0.9,en;q=0.5", "Richieste di progetto", "in attesa", "Richiesta attese approvata: il progetto esiste.", "Progetto attese sospeso.",
		"Progetto attese riattivato.", "sospeso", "attivo", "Il progetto attese ha speso il", "Accesso negato", "il progetto attese è sospeso dal"},
	"en": {"en-GB,en;q=0.9,it;q=0.3", "Project requests", "pending", "Request attese approved: the project exists.", "Project attese suspended.",
		"Project attese resumed.", "suspended", "active", "Project attese has spent", "Forbidden", "project attese is suspended since"},
}

// TestDPOWorkflowChromium drives the DPO's workflow in headless Chromium, with clicks, in
// Italian and in English (by the browser's Accept-Language): a researcher requests a
// project through the API; the DPO logs in with the form, finds the request on the page,
// amends its budget and clicks approve; the researcher queries; the DPO suspends the
// project with a reason; the researcher's query is refused before any charge with
// project_suspended, in the same language, naming the project and the reason; the DPO
// resumes it; the researcher queries and passes the alert share; the page shows the alert,
// the chart of the budget over time and the history; the exports work with the browser's
// session; a form posted without the page's CSRF token is refused.
func TestDPOWorkflowChromium(t *testing.T) {
	bin := chromium(t)
	for _, lang := range []string{"it", "en"} {
		t.Run(lang, func(t *testing.T) {
			txt := workflowText[lang]
			ts := startServer(t)
			withMember(ts, "rita", "attese")
			body := permitBody("attese")
			body["epsilon_budget"] = 5
			if resp, b := ts.call(t, "rita", "POST", "/v1/project-requests", body); resp.StatusCode != 201 {
				t.Fatalf("request: %d %s", resp.StatusCode, b)
			}
			// query charges 0.5 for sql, or answers it from the release cache if asked before.
			query := func(sql string) (int, []byte) {
				resp, b := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": sql, "project": "attese", "epsilon": 0.5}, "Accept-Language", txt.accept)
				return resp.StatusCode, b
			}

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
				chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-dev-shm-usage", true))
			actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
			defer cancelA()
			bctx, cancelB := chromedp.NewContext(actx)
			defer cancelB()
			// Each step waits at most a minute (the first run starts the browser: no timeout on it).
			run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				sctx, cancel := context.WithTimeout(bctx, time.Minute)
				defer cancel()
				if err := chromedp.Do(sctx, actions...); err != nil {
					page, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
					t.Fatalf("%s: %v\npage: %s", what, err, page)
				}
			}
			text := func(sel string) string {
				t.Helper()
				s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
				if err != nil {
					t.Fatalf("read %s: %v", sel, err)
				}
				return strings.Join(strings.Fields(s), " ")
			}
			if err := chromedp.Do(bctx); err != nil { // starts the browser
				t.Fatalf("chromium: %v", err)
			}
			if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": txt.accept}}); err != nil {
				t.Fatal(err)
			}

			// Log in with the form, as a DPO does.
			run("log in",
				chromedp.Navigate(ts.URL+"/login"),
				chromedp.WaitVisible(chromedp.CSS("#token")),
				chromedp.SendKeys(chromedp.CSS("#token"), ts.Tokens["dora"]),
				chromedp.Click(chromedp.CSS(`form.card button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS("#request-attese")),
			)
			if got := text("#requests-title"); got != txt.requests {
				t.Errorf("requests heading %q, want %q", got, txt.requests)
			}
			if got := text("#request-attese h3"); !strings.Contains(got, txt.pending) || !strings.Contains(text("#request-attese"), "HDAB-IT-2026-0042") {
				t.Errorf("the pending request shows %q", got)
			}
			if status, _ := query(permitSQL); status != 403 {
				t.Fatalf("query before the approval: %d", status)
			}

			// Approve with a smaller budget: 1.2 epsilon, so that two queries of 0.5 pass the 80% alert.
			run("approve",
				chromedp.SetValue(chromedp.CSS(`#request-attese input[name="epsilon_budget"]`), "1.2"),
				chromedp.SendKeys(chromedp.CSS(`#request-attese .approve-form input[name="reason"]`), "budget ridotto"),
				chromedp.Click(chromedp.CSS("#request-attese button.approve")),
				chromedp.WaitVisible(chromedp.CSS("#notice")),
				chromedp.WaitVisible(chromedp.CSS("#project-attese")),
			)
			if got := text("#notice"); got != txt.approved {
				t.Errorf("notice %q, want %q", got, txt.approved)
			}
			if st := ts.project(t, "attese"); st.Total.Epsilon != 1.2 || st.Approver != "dora" {
				t.Fatalf("approved project: %+v", st)
			}
			if status, b := query(permitSQL); status != 200 {
				t.Fatalf("query after the approval: %d %s", status, b)
			}

			// Suspend with a reason: the researcher is refused, before any charge.
			run("suspend",
				chromedp.Navigate(ts.URL+"/ledger"),
				chromedp.WaitVisible(chromedp.CSS(`#project-attese .suspend-form input[name="reason"]`)),
				chromedp.SendKeys(chromedp.CSS(`#project-attese .suspend-form input[name="reason"]`), "verifica del DPO"),
				chromedp.Click(chromedp.CSS("#project-attese button.suspend")),
				chromedp.WaitVisible(chromedp.CSS("#notice")),
			)
			if got := text("#notice"); got != txt.suspendedNotice {
				t.Errorf("notice %q, want %q", got, txt.suspendedNotice)
			}
			if got := text("#project-attese .project-state"); got != txt.suspendedState {
				t.Errorf("project state %q, want %q", got, txt.suspendedState)
			}
			before := ts.project(t, "attese")
			status, b := query(permitSQL)
			p := problemIn(t, b)
			if status != 403 || p.Code != "project_suspended" || p.Title != txt.title403 || !strings.Contains(p.Detail, txt.detail) || !strings.Contains(p.Detail, "verifica del DPO") {
				t.Fatalf("query while suspended: %d %s", status, b)
			}
			if after := ts.project(t, "attese"); after.Spent != before.Spent || after.Queries != before.Queries {
				t.Fatalf("the refused query was charged: %+v, before %+v", after.Spent, before.Spent)
			}

			// Resume; the researcher queries again and passes the alert share.
			// From a fresh page (no notice yet): the notice waited for is the resume's.
			run("resume",
				chromedp.Navigate(ts.URL+"/ledger"),
				chromedp.WaitVisible(chromedp.CSS("#project-attese button.resume")),
				chromedp.Click(chromedp.CSS("#project-attese button.resume")),
				chromedp.WaitVisible(chromedp.CSS("#notice")),
			)
			if got := text("#notice"); got != txt.resumedNotice {
				t.Errorf("notice %q, want %q", got, txt.resumedNotice)
			}
			if got := text("#project-attese .project-state"); got != txt.activeState {
				t.Errorf("project state %q, want %q", got, txt.activeState)
			}
			if status, b := query(secondSQL); status != 200 {
				t.Fatalf("query after the resume: %d %s", status, b)
			}
			run("reload", chromedp.Navigate(ts.URL+"/ledger"), chromedp.WaitVisible(chromedp.CSS("#alert-attese")))
			if got := text("#alert-attese"); !strings.Contains(got, txt.alert) || !strings.Contains(got, "83.3") {
				t.Errorf("alert %q, want %q... 83.33%%", got, txt.alert)
			}
			spent, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS("#chart-attese polyline.spent-line"), "points"))
			if err != nil {
				t.Fatal(err)
			}
			spentPoints := spent.Value
			charts, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("svg.budget-chart")))
			if err != nil {
				t.Fatal(err)
			}
			chartCount := len(charts)
			// Spend steps: 0 at the approval, then 0.5 and 1 (three points per step after the first).
			if n := len(strings.Fields(spentPoints)); n < 5 || chartCount < 4 {
				t.Errorf("chart: %d spent points (%q), %d charts", n, spentPoints, chartCount)
			}
			history := text("#history")
			for _, k := range []string{"kind.request", "kind.approve", "kind.suspend", "kind.resume"} {
				want := map[string]map[string]string{
					"it": {"kind.request": "richiesto", "kind.approve": "approvato", "kind.suspend": "sospeso", "kind.resume": "riattivato"},
					"en": {"kind.request": "requested", "kind.approve": "approved", "kind.suspend": "suspended", "kind.resume": "resumed"},
				}[lang][k]
				if !strings.Contains(history, want) {
					t.Errorf("the history lacks %q: %s", want, history)
				}
			}

			// The exports, with the browser's session cookie, filtered to the project.
			got, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{})
			if err != nil {
				t.Fatal(err)
			}
			var session string
			for _, c := range got.Cookies {
				if c.Name == "velo_session" {
					session = c.Value
				}
			}
			if session == "" {
				t.Fatal("no session cookie in the browser")
			}
			get := func(path string) (int, string, string) {
				req, _ := http.NewRequest("GET", ts.URL+path, nil)
				req.AddCookie(&http.Cookie{Name: "velo_session", Value: session})
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
			}
			status, ct, csv := get("/ledger/export?format=csv&project=attese")
			if status != 200 || !strings.HasPrefix(ct, "text/csv") || !strings.Contains(csv, ",suspend,") || !strings.Contains(csv, "verifica del DPO") || strings.Contains(csv, ",wl,") {
				t.Errorf("CSV export: %d %s\n%s", status, ct, csv)
			}
			status, _, nd := get("/ledger/export?format=ndjson&project=attese&user=dora")
			if status != 200 || !strings.Contains(nd, `"kind":"approve"`) || strings.Contains(nd, `"kind":"request"`) || strings.Contains(nd, `"kind":"charge"`) {
				t.Errorf("NDJSON export for dora's steps: %d\n%s", status, nd)
			}
			if status, _, _ := get("/ledger/export?format=checkpoint"); status != 404 {
				t.Errorf("checkpoint export before any checkpoint: %d", status)
			}

			// A form posted without the page's CSRF token, or from another site, is refused.
			form := url.Values{"action": {"suspend"}, "project": {"attese"}, "reason": {"forged"}}
			for name, origin := range map[string]string{"no token": ts.URL, "other site": "http://evil.example"} {
				req, _ := http.NewRequest("POST", ts.URL+"/ledger/actions", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", origin)
				req.AddCookie(&http.Cookie{Name: "velo_session", Value: session})
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 403 {
					t.Errorf("%s: %d, want 403", name, resp.StatusCode)
				}
			}
			if st := ts.project(t, "attese"); st.Suspended {
				t.Error("a forged form suspended the project")
			}
			kinds := map[string]int{}
			for _, e := range ts.Ledger.Entries("attese", 0) {
				kinds[e.Kind]++
			}
			if want := map[string]int{ledger.KindRequest: 1, ledger.KindApprove: 1, ledger.KindSuspend: 1, ledger.KindResume: 1, ledger.KindCharge: 2}; !subset(want, kinds) {
				t.Errorf("ledger entries of attese: %v, want %v", kinds, want)
			}
		})
	}
}
