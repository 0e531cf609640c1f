package notebooksapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/velo-fse/velo/internal/oidctest"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// offsetClock is real time plus an offset the test moves forward (token expiry, the JWKS
// refresh), so no test waits for time to pass.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// The people of the identity tests' realm: realm roles (mapped to Velo's roles by the
// server's oidc.roles) and groups (the projects claim).
var oidcUsers = []oidctest.User{
	{Name: "rina", Password: "pw-rina", Roles: []string{"velo-researcher"}, Projects: []string{"wl"}},
	{Name: "dana", Password: "pw-dana", Roles: []string{"velo-dpo"}},
	{Name: "nora", Password: "pw-nora", Roles: []string{"staff"}},                                      // no Velo role
	{Name: "gus", Password: "pw-gus", Roles: []string{"velo-researcher"}, Projects: []string{"ghost"}}, // a project Velo lacks
	{Name: "hal", Password: "pw-hal", Roles: []string{"velo-researcher", "velo-dpo"}},                  // two roles
}

func oidcConfig(r *oidctest.Realm) notebooksapi.OIDCConfig {
	return notebooksapi.OIDCConfig{
		Issuer: r.Issuer, ClientID: r.ClientID, ClientSecret: r.ClientSecret,
		RoleClaim:   "realm_access.roles", // Keycloak's own claim: a dotted path
		Roles:       map[string]notebooksapi.Role{"velo-researcher": notebooksapi.RoleResearcher, "velo-dpo": notebooksapi.RoleDPO},
		JWKSRefresh: time.Minute,
	}
}

func withOIDC(cfg notebooksapi.OIDCConfig, clock *offsetClock) serverOption {
	return func(o *serverSetup) {
		o.OIDC = &cfg
		if clock != nil {
			o.Now = clock.Now
		}
	}
}

// problemDetail returns the detail of a problem+json answer.
func problemDetail(t *testing.T, b []byte) string {
	t.Helper()
	var p notebooksapi.Problem
	mustJSON(t, b, &p)
	return p.Detail
}

// TestJWTBearer sends the API tokens issued by a real OpenID provider (Keycloak on
// loopback): the user, role and projects come from the token's claims; tokens without a
// Velo role, with two, or naming a project Velo lacks are refused with a clear problem;
// expired tokens and tokens for another audience too; and a key rotation at the provider
// is followed: a token from the new key is accepted at once, one from a removed key is
// refused once the keys are fetched again.
func TestJWTBearer(t *testing.T) {
	realm := oidctest.Shared(t).NewRealm(t, oidctest.RealmOptions{Users: oidcUsers})
	clock := &offsetClock{}
	var accessDir string
	ts := startServer(t, withOIDC(oidcConfig(realm), clock), withAccessLog(t, &accessDir))
	tok := func(user string) string {
		for _, u := range oidcUsers {
			if u.Name == user {
				return realm.PasswordToken(t, u.Name, u.Password).AccessToken
			}
		}
		t.Fatalf("no user %s", user)
		return ""
	}
	var jwts []string
	use := func(s string) string { jwts = append(jwts, s); return s }

	rina := use(tok("rina"))
	resp, b := ts.call(t, rina, "GET", "/v1/me", nil)
	var me notebooksapi.Me
	mustJSON(t, b, &me)
	if resp.StatusCode != 200 || me.User != "rina" || me.Role != notebooksapi.RoleResearcher || len(me.Projects) != 1 || me.Projects[0] != "wl" {
		t.Fatalf("me as rina: %d %s", resp.StatusCode, b)
	}
	q := map[string]any{"sql": "SELECT region, COUNT(*) AS n FROM booking GROUP BY region", "project": "wl", "epsilon": 0.5}
	if resp, b := ts.call(t, rina, "POST", "/v1/queries", q); resp.StatusCode != 200 {
		t.Fatalf("query as rina: %d %s", resp.StatusCode, b)
	}
	entries := ts.Ledger.Entries("wl", 0)
	if last := entries[len(entries)-1]; last.Actor != "user:rina" && last.Actor != "rina" {
		t.Errorf("the ledger records the charge as %q, want rina", last.Actor)
	}
	// The same JWT over Arrow Flight SQL.
	cl := flightServer(t, ts)
	fctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+rina, "x-velo-project", "wl")
	if rec, err := fetch(fctx, cl, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.25) region, COUNT(*) AS n FROM booking GROUP BY region"); err != nil {
		t.Errorf("Flight SQL query with rina's JWT: %v", err)
	} else {
		rec.Release()
	}
	q["project"] = "other"
	if resp, _ := ts.call(t, rina, "POST", "/v1/queries", q); resp.StatusCode != 403 {
		t.Errorf("query on another project: %d, want 403", resp.StatusCode)
	}

	// The access log records the token's user and subject, and that it came as a JWT.
	var found bool
	for _, r := range accessExport(t, ts, "?user=rina") {
		if r.Route == "POST /v1/queries" && r.Status == 200 {
			found = true
			if r.Via != "jwt" || r.Subject == "" || r.Subject == "rina" || r.Project != "wl" {
				t.Errorf("the access record of rina's query: %+v", r)
			}
		}
	}
	if !found {
		t.Error("rina's query is not in the access log")
	}

	dana := use(tok("dana"))
	if resp, b := ts.call(t, dana, "GET", "/v1/ledger", nil); resp.StatusCode != 200 {
		t.Errorf("ledger as dana (dpo): %d %s", resp.StatusCode, b)
	}
	q["project"] = "wl"
	if resp, _ := ts.call(t, dana, "POST", "/v1/queries", q); resp.StatusCode != 403 {
		t.Errorf("query as the dpo: %d, want 403", resp.StatusCode)
	}
	// Login codes stand for Velo's own tokens: a DPO with a JWT is sent to the page's login.
	if resp, b := ts.call(t, dana, "POST", "/v1/login-codes", nil); resp.StatusCode != 403 || !strings.Contains(problemDetail(t, b), "organisation's account") {
		t.Errorf("a login code for a JWT: %d %s", resp.StatusCode, b)
	}

	for _, c := range []struct{ user, want string }{
		{"nora", "no Velo role"},
		{"hal", "more than one Velo role"},
		{"gus", `project "ghost"`},
	} {
		resp, b := ts.call(t, use(tok(c.user)), "GET", "/v1/me", nil)
		if resp.StatusCode != 403 || !strings.Contains(problemDetail(t, b), c.want) || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want 403 saying %q", c.user, resp.StatusCode, b, c.want)
		}
	}
	if resp, b := ts.call(t, "not.a.jwt", "GET", "/v1/me", nil); resp.StatusCode != 401 {
		t.Errorf("a malformed JWT: %d %s", resp.StatusCode, b)
	}

	// Key rotation: the new key signs new tokens, accepted at once (an unknown key id
	// fetches the keys); the old key's tokens still pass while it is published.
	oldKID, _ := oidctest.KeyID(rina)
	newKID := realm.RotateKey(t)
	rina2 := use(tok("rina"))
	if k, _ := oidctest.KeyID(rina2); k != newKID {
		t.Fatalf("the new token is signed by %s, want %s", k, newKID)
	}
	for name, tk := range map[string]string{"new key": rina2, "old key, still published": rina} {
		if resp, b := ts.call(t, tk, "GET", "/v1/me", nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	// The old key removed: once the keys are fetched again (oidc.jwks_refresh), its
	// tokens are refused.
	realm.RemoveKey(t, oldKID)
	clock.Advance(time.Minute + time.Second)
	resp, b = ts.call(t, rina, "GET", "/v1/me", nil)
	if resp.StatusCode != 401 || !strings.Contains(problemDetail(t, b), "signature") {
		t.Errorf("a token of the removed key: %d %s, want 401 about the signature", resp.StatusCode, b)
	}
	if resp, b := ts.call(t, rina2, "GET", "/v1/me", nil); resp.StatusCode != 200 {
		t.Errorf("a token of the new key after the removal: %d %s", resp.StatusCode, b)
	}

	// Expiry: the realm's tokens live an hour.
	clock.Advance(2 * time.Hour)
	resp, b = ts.call(t, rina2, "GET", "/v1/me", nil)
	if resp.StatusCode != 401 || !strings.Contains(problemDetail(t, b), "expired") {
		t.Errorf("an expired token: %d %s", resp.StatusCode, b)
	}

	// Static tokens still work beside JWTs.
	if resp, _ := ts.call(t, "rita", "GET", "/v1/me", nil); resp.StatusCode != 200 {
		t.Errorf("a static token: %d", resp.StatusCode)
	}

	// Another audience: a server expecting "velo-api" refuses the realm's tokens (aud velo).
	cfg := oidcConfig(realm)
	cfg.Audience = "velo-api"
	ts2 := startServer(t, withOIDC(cfg, nil))
	resp, b = ts2.call(t, use(tok("rina")), "GET", "/v1/me", nil)
	if resp.StatusCode != 401 || !strings.Contains(problemDetail(t, b), "audience") {
		t.Errorf("a token for another audience: %d %s", resp.StatusCode, b)
	}

	// No token, nor any part of one, reaches the log.
	for _, srv := range []*testServer{ts, ts2} {
		logs := srv.logs.String()
		for _, j := range jwts {
			_, sig, _ := strings.Cut(j[strings.Index(j, ".")+1:], ".")
			if strings.Contains(logs, j) || strings.Contains(logs, sig) {
				t.Errorf("the log holds a JWT")
			}
		}
	}
	_ = http.StatusOK
}
