package notebooksapi_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/testenv"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// runQueries charges a few queries so that the page has something to show.
func runQueries(t *testing.T, ts *testServer) {
	t.Helper()
	for _, q := range []struct {
		user, sql string
		eps       float64
	}{
		{"rita", shareSQL, 1},
		{"grafana", "SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking WHERE first_access GROUP BY service_code", 0.5},
		{"otto", "SELECT region, AVG(wait_days) AS avg_wait FROM booking GROUP BY region", 0.25},
	} {
		project := "wl"
		if q.user == "otto" {
			project = "other"
		}
		resp, b := ts.call(t, q.user, "POST", "/v1/queries", map[string]any{"sql": q.sql, "project": project, "epsilon": q.eps})
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", q.user, resp.StatusCode, b)
		}
	}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values, origin string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return do(t, c, req)
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return do(t, c, req)
}

// TestLoginFlow logs in through the form and with a one-time code, and checks what
// neither lets through.
func TestLoginFlow(t *testing.T) {
	ts := startServer(t)
	runQueries(t, ts)
	c := browser(t)

	resp, _ := get(t, c, ts.URL+"/ledger")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("no session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get(t, c, ts.URL+"/login")
	if resp.StatusCode != 200 || !strings.Contains(body, `<form method="post" action="/login"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("login form: %d %s", resp.StatusCode, body)
	}
	// A researcher's token does not open the page; a wrong token neither.
	if resp, _ := postForm(t, c, ts.URL+"/login", url.Values{"token": {ts.Tokens["rita"]}}, ts.URL); resp.StatusCode != 403 {
		t.Errorf("researcher login: %d", resp.StatusCode)
	}
	if resp, _ := postForm(t, c, ts.URL+"/login", url.Values{"token": {"velo_wrong"}}, ts.URL); resp.StatusCode != 401 {
		t.Errorf("wrong token login: %d", resp.StatusCode)
	}
	// A form posted from another site is refused.
	if resp, _ := postForm(t, c, ts.URL+"/login", url.Values{"token": {ts.Tokens["dora"]}}, "http://evil.example"); resp.StatusCode != 403 {
		t.Errorf("cross-site login: %d", resp.StatusCode)
	}
	resp, _ = postForm(t, c, ts.URL+"/login", url.Values{"token": {ts.Tokens["dora"]}}, ts.URL)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ledger" {
		t.Fatalf("dpo login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "velo_session" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" || strings.Contains(sess.Value, ts.Tokens["dora"]) {
		t.Fatalf("session cookie: %+v", sess)
	}
	resp, body = get(t, c, ts.URL+"/ledger")
	if resp.StatusCode != 200 || !strings.Contains(body, "Chain verified") {
		t.Fatalf("page with session: %d", resp.StatusCode)
	}
	// The cookie opens the page only, never the API.
	req, _ := http.NewRequest("GET", ts.URL+"/v1/ledger", nil)
	if resp, _ := do(t, c, req); resp.StatusCode != 401 {
		t.Errorf("API with the session cookie: %d, want 401", resp.StatusCode)
	}
	// Log out: the session ends.
	if resp, _ := postForm(t, c, ts.URL+"/logout", nil, ts.URL); resp.StatusCode != 303 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", ts.URL+"/ledger", nil)
	req.AddCookie(sess)
	if resp, _ := do(t, &http.Client{CheckRedirect: c.CheckRedirect}, req); resp.StatusCode != 303 {
		t.Errorf("page after logout with the old cookie: %d", resp.StatusCode)
	}

	// One-time code: made with the DPO's bearer token, used once.
	code := loginURL(t, ts)
	c2 := browser(t)
	resp, _ = get(t, c2, ts.URL+code)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ledger" {
		t.Fatalf("code login: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c2, ts.URL+"/ledger"); resp.StatusCode != 200 {
		t.Errorf("page after code login: %d", resp.StatusCode)
	}
	if resp, _ := get(t, browser(t), ts.URL+code); resp.StatusCode != 401 {
		t.Errorf("code used twice: %d", resp.StatusCode)
	}
	// Revoking the token ends the sessions made from it.
	var users []notebooksapi.User
	for _, u := range ts.Users {
		if u.Name != "dora" {
			users = append(users, u)
		}
	}
	ts.Server.SetUsers(users)
	if resp, _ := get(t, c2, ts.URL+"/ledger"); resp.StatusCode != 303 {
		t.Errorf("page after the token was revoked: %d", resp.StatusCode)
	}

	// The page also takes a bearer header (scripts), for the DPO only.
	resp, _ = ts.call(t, "rita", "GET", "/ledger", nil)
	if resp.StatusCode != 403 {
		t.Errorf("page as researcher: %d", resp.StatusCode)
	}
}

func loginURL(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, b := ts.call(t, "dora", "POST", "/v1/login-codes", nil)
	if resp.StatusCode != 201 {
		t.Fatalf("login code: %d %s", resp.StatusCode, b)
	}
	var lc notebooksapi.LoginCode
	mustJSON(t, b, &lc)
	if !strings.HasPrefix(lc.LoginURL, "/login?code=") || time.Until(lc.ExpiresAt) > time.Minute {
		t.Fatalf("login code: %+v", lc)
	}
	return lc.LoginURL
}

// chromium is Debian's headless Chromium; without it the test stops, loudly
// (internal/testenv). .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	const path = "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		testenv.Missing(t, "no %s to load the DPO's ledger page in a headless browser: apt-get install chromium", path)
	}
	return path
}

// TestLedgerPageChromium loads the DPO page in headless Chromium and checks what it shows.
// --dump-dom cannot send a header or fill a form, so the test does what a DPO with a
// terminal would: it asks the API (with the DPO's bearer token) for a one-time login code
// and lets the browser open that link; the server swaps the code for an HttpOnly session
// cookie and redirects to /ledger, which Chromium renders and dumps.
func TestLedgerPageChromium(t *testing.T) {
	bin := chromium(t)
	ts := startServer(t)
	runQueries(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--dump-dom", ts.URL+loginURL(t, ts))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " "))
	text = strings.Join(strings.Fields(text), " ")
	for _, want := range []string{
		"Velo privacy ledger", "Signed in as dora",
		"Chain verified", // the verify status
		"waiting-list reduction, region by region", "art. 2-sexies c.1-bis Codice privacy", // purpose, legal basis
		"another study", "art. 9(2)(j) GDPR",
		"in total, epsilon 1.75 and delta 0 have been spent", // across projects
		"user:rita", "user:grafana", "user:otto", // charges: user
		"AVG(CAST(within_target AS INTEGER)) AS share", "MEDIAN(wait_days)", // charges: SQL
		"3 charges",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	// Budget bars: wl spent 1.5 of 10, other 0.25 of 5.
	for _, want := range []string{`<meter class="budget-epsilon" min="0" max="10" value="1.5"`, `<meter class="budget-epsilon" min="0" max="5" value="0.25"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks the bar %s", want)
		}
	}
	if !regexp.MustCompile(`left-epsilon">8.5<`).MatchString(dom) {
		t.Error("the page does not show wl's 8.5 left")
	}
	// Charges: one row each, with its epsilon.
	if n := strings.Count(dom, `<tr class="charge">`); n != 3 {
		t.Errorf("%d charge rows, want 3", n)
	}
	if t.Failed() {
		t.Logf("page text: %s", text)
	}
}
