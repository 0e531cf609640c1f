package notebooksapi_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// TestOIDCConfig: the oidc section is read with its secret from a file beside velo.yaml,
// and every wrong value is named by its field.
func TestOIDCConfig(t *testing.T) {
	base := "data: d\nstate: s\nusers:\n  - name: rita\n    role: researcher\n    projects: [wl]\n"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "oidc-secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := base + `oidc:
  issuer: https://id.example.org/realms/asl
  client_id: velo
  client_secret_file: oidc-secret
  redirect_url: https://velo.example.org/login/oidc/callback
  role_claim: realm_access.roles
  roles: {velo-dpo: dpo, velo-researcher: researcher}
  jwks_refresh: 10m
`
	path := filepath.Join(dir, "velo.yaml")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := notebooksapi.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.OIDC
	if o == nil || o.ClientSecret != "s3cret" || o.Roles["velo-dpo"] != notebooksapi.RoleDPO || o.JWKSRefresh != 10*time.Minute || o.RoleClaim != "realm_access.roles" {
		t.Fatalf("oidc: %+v", o)
	}
	for _, c := range []struct{ name, doc, field string }{
		{"no issuer", "oidc:\n  client_id: velo\n", "oidc.issuer"},
		{"http issuer", "oidc:\n  issuer: http://id.example.org/r\n  client_id: velo\n", "oidc.issuer"},
		{"no client", "oidc:\n  issuer: https://id.example.org/r\n", "oidc.client_id"},
		{"bad role", "oidc:\n  issuer: https://id.example.org/r\n  client_id: velo\n  roles: {boss: root}\n", "oidc.roles.boss"},
		{"bad redirect", "oidc:\n  issuer: https://id.example.org/r\n  client_id: velo\n  redirect_url: http://velo.example.org/cb\n", "oidc.redirect_url"},
		{"unknown field", "oidc:\n  issuer: https://id.example.org/r\n  client_id: velo\n  client_secret: plain\n", ""},
	} {
		_, err := notebooksapi.ParseConfig([]byte(base + c.doc))
		var fe *notebooksapi.FieldError
		switch {
		case err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.field == "":
			// a YAML decoding error: the secret is never written in velo.yaml
		case !errors.As(err, &fe) || fe.Field != c.field:
			t.Errorf("%s: %v, want a problem with %s", c.name, err, c.field)
		}
	}
	// Loopback http is allowed (tests).
	if _, err := notebooksapi.ParseConfig([]byte(base + "oidc:\n  issuer: http://127.0.0.1:8081/realms/t\n  client_id: velo\n")); err != nil {
		t.Errorf("loopback issuer: %v", err)
	}
}

// TestOIDCProviderDown: with the provider unreachable, a JWT gets 503
// identity_provider_unavailable (not counted as a failed authentication), and Velo's own
// tokens still work.
func TestOIDCProviderDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String() + "/realms/gone"
	ln.Close() // nothing listens there now
	ts := startServer(t, withOIDC(notebooksapi.OIDCConfig{Issuer: issuer, ClientID: "velo"}, nil))
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	for range 12 { // more than max_auth_failures (10): none counts
		resp, b := ts.call(t, jwt, "GET", "/v1/me", nil)
		var p notebooksapi.Problem
		mustJSON(t, b, &p)
		if resp.StatusCode != 503 || p.Code != notebooksapi.CodeIdentityProviderUnavailable {
			t.Fatalf("a JWT with the provider down: %d %s", resp.StatusCode, b)
		}
	}
	if resp, _ := ts.call(t, "rita", "GET", "/v1/me", nil); resp.StatusCode != 200 {
		t.Errorf("a static token with the provider down: %d", resp.StatusCode)
	}
}
