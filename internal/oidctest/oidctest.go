// Package oidctest runs a real OpenID provider on loopback for Velo's identity tests:
// Keycloak's server distribution (org.keycloak:keycloak-quarkus-dist from Maven Central),
// installed by install-keycloak.sh beside this file into the cache (.ci/run runs it), and
// started in development mode with an in-memory database on free loopback ports.
//
// The install is the VELO_KEYCLOAK_HOME setting, else the newest keycloak-* folder in
// $XDG_CACHE_HOME/velo (~/.cache/velo). Without it a test stops through testenv.Missing:
// a loud skip on a developer's machine, a failure under CI=true.
//
// Keycloak takes half a minute to start on two cores, so a test process starts one (Shared)
// and every test makes its own realm in it (NewRealm, a second): its client, users, roles,
// project groups and signing keys are the test's alone. The package's TestMain stops it
// (StopShared).
package oidctest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/testenv"
)

// HomeEnv names the Keycloak install (the folder holding bin/kc.sh).
const HomeEnv = "VELO_KEYCLOAK_HOME"

// Home returns the Keycloak install, or an error saying where it looked and how to
// install it.
func Home() (string, error) {
	return testenv.InstallDir(HomeEnv, filepath.Join("bin", "kc.sh"),
		"no OpenID provider for the identity tests: run internal/oidctest/install-keycloak.sh (Keycloak from Maven Central, needs maven and a JDK 17)",
		filepath.Join(testenv.CacheDir(), "velo", "keycloak-*"))
}

// Provider is a running Keycloak.
type Provider struct {
	URL     string // http://127.0.0.1:PORT
	dir     string // temporary folder: the log
	cmd     *exec.Cmd
	adminPW string
	done    chan struct{}
	realms  atomic.Int64
}

var (
	sharedMu  sync.Mutex
	shared    *Provider
	sharedErr error
)

// Shared returns the test process's provider, starting it on first use. A missing install
// stops the test through testenv.Missing.
func Shared(t testing.TB) *Provider {
	t.Helper()
	home, err := Home()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start(home)
	}
	if sharedErr != nil {
		t.Fatalf("oidctest: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared provider, if one was started (from TestMain).
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

// Start starts Keycloak from home in development mode (in-memory database) on a free
// loopback port and waits until it answers, at most five minutes. Starts are serialised
// across processes by a lock file in home: the first start of an install writes its
// optimised image there.
func Start(home string) (*Provider, error) {
	dir, err := os.MkdirTemp("", "velo-keycloak-")
	if err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(home, ".velo-start.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	port, mport := freePort(), freePort()
	p := &Provider{URL: "http://127.0.0.1:" + strconv.Itoa(port), dir: dir, adminPW: "admin-" + strconv.FormatInt(time.Now().UnixNano(), 36), done: make(chan struct{})}
	logf, err := os.Create(filepath.Join(dir, "keycloak.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(home, "bin", "kc.sh"), "start-dev",
		"--http-host=127.0.0.1", "--http-port="+strconv.Itoa(port), "--http-management-port="+strconv.Itoa(mport),
		"--db=dev-mem", "--log-level=warn,org.keycloak.quarkus.runtime.KeycloakMain:info")
	cmd.Env = append(os.Environ(), "KC_BOOTSTRAP_ADMIN_USERNAME=admin", "KC_BOOTSTRAP_ADMIN_PASSWORD="+p.adminPW)
	cmd.Stdout, cmd.Stderr = logf, logf
	// kc.sh and its java: one group, which Stop ends. If the test process dies first (a
	// timeout's panic), kc.sh gets SIGTERM and passes it on to java.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start keycloak: %w", err)
	}
	p.cmd = cmd
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get(p.URL + "/realms/master/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("keycloak exited while starting:\n%s", p.logTail())
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("keycloak did not answer within 5 minutes:\n%s", p.logTail())
		}
	}
}

func (p *Provider) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "keycloak.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop ends Keycloak (its process group) and removes its folder.
func (p *Provider) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	_ = os.RemoveAll(p.dir)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// User is a person in a test realm.
type User struct {
	Name     string
	Password string
	Roles    []string // realm roles: the access token's realm_access.roles and velo_roles
	Projects []string // groups: the tokens' projects claim
}

// RealmOptions shape a test realm.
type RealmOptions struct {
	Users []User
	// RedirectURIs the client may send the browser back to ("http://127.0.0.1:*/...").
	RedirectURIs []string
	// TokenLifespan of access tokens; default 1h.
	TokenLifespan time.Duration
}

// Realm is a test's realm: an issuer with one confidential client, ClientID, whose
// access and ID tokens carry the audience ClientID, the claims velo_roles (realm roles)
// and projects (group names), and preferred_username.
type Realm struct {
	p            *Provider
	Name         string
	Issuer       string
	ClientID     string
	ClientSecret string
}

// NewRealm makes a realm for t (removed when t ends).
func (p *Provider) NewRealm(t testing.TB, o RealmOptions) *Realm {
	t.Helper()
	r := &Realm{p: p, Name: fmt.Sprintf("velo-%d", p.realms.Add(1)), ClientID: "velo", ClientSecret: "secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	r.Issuer = p.URL + "/realms/" + r.Name
	life := o.TokenLifespan
	if life == 0 {
		life = time.Hour
	}
	roles := map[string]bool{}
	groups := map[string]bool{}
	var users []map[string]any
	for _, u := range o.Users {
		var gs []string
		for _, g := range u.Projects {
			groups[g] = true
			gs = append(gs, "/"+g)
		}
		for _, ro := range u.Roles {
			roles[ro] = true
		}
		users = append(users, map[string]any{
			"username": u.Name, "enabled": true, "email": u.Name + "@example.org", "emailVerified": true,
			"firstName": u.Name, "lastName": "Test",
			"credentials": []map[string]any{{"type": "password", "value": u.Password, "temporary": false}},
			"realmRoles":  u.Roles, "groups": gs,
		})
	}
	var roleList, groupList []map[string]any
	for _, ro := range slices.Sorted(mapKeys(roles)) {
		roleList = append(roleList, map[string]any{"name": ro})
	}
	for _, g := range slices.Sorted(mapKeys(groups)) {
		groupList = append(groupList, map[string]any{"name": g})
	}
	mapper := func(name, kind string, cfg map[string]string) map[string]any {
		cfg["access.token.claim"], cfg["id.token.claim"], cfg["userinfo.token.claim"] = "true", "true", "true"
		return map[string]any{"name": name, "protocol": "openid-connect", "protocolMapper": kind, "config": cfg}
	}
	redirects := o.RedirectURIs
	if len(redirects) == 0 {
		redirects = []string{"http://127.0.0.1:*"}
	}
	realm := map[string]any{
		"realm": r.Name, "enabled": true, "accessTokenLifespan": int(life / time.Second),
		"ssoSessionIdleTimeout": 3600, "ssoSessionMaxLifespan": 36000,
		"roles": map[string]any{"realm": roleList}, "groups": groupList, "users": users,
		"clients": []map[string]any{{
			"clientId": r.ClientID, "enabled": true, "publicClient": false, "secret": r.ClientSecret,
			"redirectUris": redirects, "webOrigins": []string{"+"}, "standardFlowEnabled": true, "directAccessGrantsEnabled": true,
			"attributes": map[string]string{"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "+"},
			"protocolMappers": []map[string]any{
				mapper("audience", "oidc-audience-mapper", map[string]string{"included.client.audience": r.ClientID}),
				mapper("velo_roles", "oidc-usermodel-realm-role-mapper", map[string]string{"claim.name": "velo_roles", "multivalued": "true", "jsonType.label": "String"}),
				mapper("projects", "oidc-group-membership-mapper", map[string]string{"claim.name": "projects", "full.path": "false"}),
			},
		}},
	}
	if err := r.admin("POST", "/admin/realms", realm, nil); err != nil {
		t.Fatalf("oidctest: create realm: %v", err)
	}
	t.Cleanup(func() { _ = r.admin("DELETE", "/admin/realms/"+r.Name, nil, nil) })
	return r
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// adminToken logs in to the master realm as the bootstrap admin.
func (p *Provider) adminToken() (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err := postForm(p.URL+"/realms/master/protocol/openid-connect/token", url.Values{
		"grant_type": {"password"}, "client_id": {"admin-cli"}, "username": {"admin"}, "password": {p.adminPW},
	}, &tok)
	return tok.AccessToken, err
}

// admin calls Keycloak's admin API; out, when not nil, receives the JSON answer.
func (r *Realm) admin(method, path string, in, out any) error {
	tok, err := r.p.adminToken()
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.p.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func postForm(u string, form url.Values, out any) error {
	resp, err := http.PostForm(u, form)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: %s %s", u, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}

// Token is a password grant's answer.
type Token struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
}

// PasswordToken gets user's tokens from the provider's token endpoint (the resource
// owner password grant, which the test client allows), signed with the realm's current
// active key.
func (r *Realm) PasswordToken(t testing.TB, user, password string) Token {
	t.Helper()
	var tok Token
	if err := postForm(r.Issuer+"/protocol/openid-connect/token", url.Values{
		"grant_type": {"password"}, "client_id": {r.ClientID}, "client_secret": {r.ClientSecret},
		"username": {user}, "password": {password}, "scope": {"openid"},
	}, &tok); err != nil {
		t.Fatalf("oidctest: token for %s: %v", user, err)
	}
	return tok
}

// Key is one of a realm's signing keys.
type Key struct {
	KID         string `json:"kid"`
	ProviderID  string `json:"providerId"`
	Algorithm   string `json:"algorithm"`
	Status      string `json:"status"`
	Use         string `json:"use"`
	Priority    int64  `json:"providerPriority"`
	Type        string `json:"type"`
	Certificate string `json:"certificate"`
}

// RS256Keys lists the realm's RS256 signing keys, highest priority (the active one) first.
func (r *Realm) RS256Keys(t testing.TB) []Key {
	t.Helper()
	var ks struct {
		Keys []Key `json:"keys"`
	}
	if err := r.admin("GET", "/admin/realms/"+r.Name+"/keys", nil, &ks); err != nil {
		t.Fatalf("oidctest: keys: %v", err)
	}
	var out []Key
	for _, k := range ks.Keys {
		if k.Algorithm == "RS256" && k.Use == "SIG" {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b Key) int { return int(b.Priority - a.Priority) })
	return out
}

// RotateKey adds a new RS256 key with a higher priority than every other, so new tokens
// are signed with it, and returns its key id. The old keys stay published until removed.
func (r *Realm) RotateKey(t testing.TB) string {
	t.Helper()
	before := r.RS256Keys(t)
	prio := int64(100)
	for _, k := range before {
		prio = max(prio, k.Priority+100)
	}
	var realm struct {
		ID string `json:"id"`
	}
	if err := r.admin("GET", "/admin/realms/"+r.Name, nil, &realm); err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	comp := map[string]any{
		"name": "rotated-" + strconv.FormatInt(prio, 10), "providerId": "rsa-generated", "providerType": "org.keycloak.keys.KeyProvider",
		"parentId": realm.ID, "config": map[string][]string{"priority": {strconv.FormatInt(prio, 10)}, "keySize": {"2048"}, "algorithm": {"RS256"}, "active": {"true"}, "enabled": {"true"}},
	}
	if err := r.admin("POST", "/admin/realms/"+r.Name+"/components", comp, nil); err != nil {
		t.Fatalf("oidctest: add key: %v", err)
	}
	after := r.RS256Keys(t)
	if len(after) == 0 || after[0].Priority != prio {
		t.Fatalf("oidctest: the new key is not the realm's active key: %+v", after)
	}
	return after[0].KID
}

// RemoveKey deletes the key provider holding kid: the key leaves the realm's JWKS.
func (r *Realm) RemoveKey(t testing.TB, kid string) {
	t.Helper()
	var ks struct {
		Keys []struct {
			KID        string `json:"kid"`
			ProviderID string `json:"providerId"`
		} `json:"keys"`
	}
	if err := r.admin("GET", "/admin/realms/"+r.Name+"/keys", nil, &ks); err != nil {
		t.Fatalf("oidctest: keys: %v", err)
	}
	for _, k := range ks.Keys {
		if k.KID == kid {
			if err := r.admin("DELETE", "/admin/realms/"+r.Name+"/components/"+k.ProviderID, nil, nil); err != nil {
				t.Fatalf("oidctest: remove key: %v", err)
			}
			return
		}
	}
	t.Fatalf("oidctest: the realm has no key %s", kid)
}

// JWKSKeyIDs lists the key ids the realm publishes (its jwks_uri).
func (r *Realm) JWKSKeyIDs(t testing.TB) []string {
	t.Helper()
	resp, err := http.Get(r.Issuer + "/protocol/openid-connect/certs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KID)
	}
	return ids
}

// KeyID returns the kid in a JWT's header.
func KeyID(jwt string) (string, error) {
	h, _, ok := strings.Cut(jwt, ".")
	if !ok {
		return "", errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", err
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return "", err
	}
	return hdr.KID, nil
}
