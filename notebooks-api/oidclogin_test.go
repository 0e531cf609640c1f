package notebooksapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/velo-fse/velo/internal/oidctest"
)

// chromedpBrowser starts headless Chromium driven through the DevTools protocol (chromedp): a
// fresh profile, so a fresh cookie jar.
func chromedpBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(bctx, 4*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	return ctx
}

// TestOIDCPageLoginChromium logs a DPO in to the ledger page through the organisation's
// provider in headless Chromium, with clicks: the login form's link, the provider's own
// login form (Keycloak's), back to the ledger page; logout ends both Velo's session and the
// provider's; a researcher who logs in the same way is refused the page.
func TestOIDCPageLoginChromium(t *testing.T) {
	realm := oidctest.Shared(t).NewRealm(t, oidctest.RealmOptions{Users: oidcUsers})
	ts := startServer(t, func(o *serverSetup) {
		cfg := oidcConfig(realm)
		cfg.RedirectURL = o.url + "/login/oidc/callback"
		o.OIDC = &cfg
	})
	runQueries(t, ts)

	ctx := chromedpBrowser(t)
	type css = chromedp.CSS
	location := func(ctx context.Context) string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatalf("location: %v", err)
		}
		return loc
	}
	// providerLogin clicks the organisation's login and fills in the provider's form; it
	// returns where that form was.
	providerLogin := func(ctx context.Context, user, pw string) string {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(ts.URL+"/login"),
			chromedp.Click(css("#oidc-login")),
			chromedp.WaitVisible(css("#username")), // the provider's form
		); err != nil {
			t.Fatalf("to the provider's login form: %v", err)
		}
		loc := location(ctx)
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(css("#username"), user),
			chromedp.SendKeys(css("#password"), pw),
			chromedp.Click(css("#kc-login")),
		); err != nil {
			t.Fatalf("the provider's login form: %v", err)
		}
		return loc
	}
	loc := providerLogin(ctx, "dana", "pw-dana")
	if !strings.HasPrefix(loc, realm.Issuer+"/protocol/openid-connect/auth") || !strings.Contains(loc, "code_challenge_method=S256") || !strings.Contains(loc, "nonce=") || !strings.Contains(loc, "state=") {
		t.Errorf("the provider's login form is at %s: want its authorization endpoint with PKCE, nonce and state", loc)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css("table"))); err != nil {
		t.Fatalf("back to the ledger page: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(css("body")))
	if err != nil {
		t.Fatal(err)
	}
	if loc := location(ctx); loc != ts.URL+"/ledger" {
		t.Errorf("after the login the browser is at %s, want %s/ledger", loc, ts.URL)
	}
	for _, want := range []string{"Signed in as dana (dpo)", "waiting-list reduction, region by region", "user:rita"} {
		if !strings.Contains(text, want) {
			t.Errorf("the ledger page after the organisation's login lacks %q", want)
		}
	}

	// Logout: Velo's session ends, and the provider's (its login form shows again).
	step, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(step,
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css("#token")), // back on Velo's login form
		chromedp.Navigate(ts.URL+"/ledger"),
		chromedp.WaitVisible(css("#token")), // the page wants a login again
	); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(css("body")))
		t.Fatalf("logout: %v (at %s: %s)", err, location(ctx), body)
	}
	if loc := location(ctx); loc != ts.URL+"/login" {
		t.Errorf("after logout /ledger leads to %s, want the login form", loc)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/login"), chromedp.Click(css("#oidc-login")),
		chromedp.WaitVisible(css("#username"))); err != nil {
		t.Fatalf("after logout the provider does not ask for the password again: %v", err)
	}

	// A researcher logs in at the provider, and Velo refuses the page.
	ctx2 := chromedpBrowser(t)
	providerLogin(ctx2, "rina", "pw-rina")
	if err := chromedp.Do(ctx2, chromedp.WaitVisible(css("#message"))); err != nil {
		t.Fatalf("researcher: %v", err)
	}
	msg, err := chromedp.Run(ctx2, chromedp.Text(css("#message")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "your role is researcher") {
		t.Errorf("a researcher's organisation login: %q", msg)
	}

	// A callback that did not start in this browser is refused.
	resp, _ := ts.call(t, "", "GET", "/login/oidc/callback?state=forged&code=x", nil)
	if resp.StatusCode != 401 {
		t.Errorf("a forged callback: %d, want 401", resp.StatusCode)
	}
}
