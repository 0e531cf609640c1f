package notebooksapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Identity from the organisation (docs/identity.md): beside the static tokens of
// velo.yaml, the API takes JWT bearer tokens issued by the organisation's OpenID provider,
// and the DPO page logs in through it (oidclogin.go). A token is checked against the
// issuer's discovery document and keys (signature, issuer, audience, expiry); its user,
// role and projects come from claims named in the configuration.

// OIDCConfig is velo.yaml's oidc section.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL (https; http only on a loopback address); its
	// /.well-known/openid-configuration names the keys and endpoints.
	Issuer string `yaml:"issuer"`
	// ClientID is Velo's client at the provider (the DPO page's login).
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client's secret (relative to velo.yaml); the secret is
	// never written in velo.yaml itself. Without it the client is public (PKCE only).
	ClientSecretFile string `yaml:"client_secret_file,omitempty"`
	// ClientSecret is read from ClientSecretFile by LoadConfig.
	ClientSecret string `yaml:"-"`
	// Audience a bearer token must carry in aud; default client_id.
	Audience string `yaml:"audience,omitempty"`
	// RedirectURL is the page login's callback as the browser reaches Velo:
	// https://velo.example.org/login/oidc/callback. Required for the page login.
	RedirectURL string `yaml:"redirect_url,omitempty"`
	// UsernameClaim names the user in the ledger and the access log; default
	// preferred_username (else the subject).
	UsernameClaim string `yaml:"username_claim,omitempty"`
	// RoleClaim holds the user's roles (a string or an array; a dotted path reaches into
	// objects: realm_access.roles); default roles.
	RoleClaim string `yaml:"role_claim,omitempty"`
	// ProjectsClaim holds the user's projects (a string or an array); default projects.
	ProjectsClaim string `yaml:"projects_claim,omitempty"`
	// Roles maps values of the role claim to Velo's roles; values not listed are ignored.
	// Without it, values that are Velo role names are taken as they are.
	Roles map[string]Role `yaml:"roles,omitempty"`
	// JWKSRefresh is how often the issuer's keys are fetched again, and so the longest a
	// key the issuer removed is still accepted; default 5m. A token signed with a key not
	// yet seen fetches them at once.
	JWKSRefresh time.Duration `yaml:"jwks_refresh,omitempty"`
}

func (c OIDCConfig) withDefaults() OIDCConfig {
	if c.Audience == "" {
		c.Audience = c.ClientID
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = "preferred_username"
	}
	if c.RoleClaim == "" {
		c.RoleClaim = "roles"
	}
	if c.ProjectsClaim == "" {
		c.ProjectsClaim = "projects"
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = 5 * time.Minute
	}
	return c
}

// validate checks the oidc section; field names are under "oidc.".
func (c *OIDCConfig) validate() error {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return &FieldError{"oidc.issuer", "required: the OpenID provider's issuer URL"}
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return &FieldError{"oidc.issuer", fmt.Sprintf("%q is not an http(s) URL", c.Issuer)}
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return &FieldError{"oidc.issuer", "must be https (http only on a loopback address, for tests)"}
	case c.ClientID == "":
		return &FieldError{"oidc.client_id", "required: Velo's client at the provider"}
	case c.JWKSRefresh < 0:
		return &FieldError{"oidc.jwks_refresh", "must not be negative"}
	}
	if c.RedirectURL != "" {
		ru, err := url.Parse(c.RedirectURL)
		if err != nil || ru.Host == "" || (ru.Scheme != "https" && !(ru.Scheme == "http" && loopbackHost(ru.Hostname()))) || ru.Path != "/login/oidc/callback" {
			return &FieldError{"oidc.redirect_url", fmt.Sprintf("%q: want https://YOUR-HOST/login/oidc/callback (http only on a loopback address)", c.RedirectURL)}
		}
	}
	for v, r := range c.Roles {
		switch r {
		case RoleResearcher, RoleOfficial, RoleDPO, RoleAdmin:
		default:
			return &FieldError{"oidc.roles." + v, fmt.Sprintf("%q is not one of researcher, official, dpo, admin", r)}
		}
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loadSecret reads ClientSecretFile (resolved against base).
func (c *OIDCConfig) loadSecret(base string) error {
	if c.ClientSecretFile == "" {
		return nil
	}
	p := c.ClientSecretFile
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return &FieldError{"oidc.client_secret_file", err.Error()}
	}
	c.ClientSecret = strings.TrimSpace(string(b))
	return nil
}

// oidcAuth checks JWTs from the configured issuer.
type oidcAuth struct {
	cfg OIDCConfig
	now func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider // nil until discovery succeeded
	keys     *refreshingKeys
}

func newOIDCAuth(cfg OIDCConfig, now func() time.Time) *oidcAuth {
	return &oidcAuth{cfg: cfg.withDefaults(), now: now}
}

// CodeIdentityProviderUnavailable: a JWT could not be checked because the organisation's
// OpenID provider cannot be reached (503).
const CodeIdentityProviderUnavailable = "identity_provider_unavailable"

// errProviderDown: discovery failed; the request is answered 503, not counted as a failed
// authentication.
var errProviderDown = errors.New("the identity provider cannot be reached")

// discover fetches the issuer's discovery document once (again after a failure).
func (a *oidcAuth) discover(ctx context.Context) (*oidc.Provider, *refreshingKeys, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.provider != nil {
		return a.provider, a.keys, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, a.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errProviderDown, err)
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, nil, fmt.Errorf("%w: its discovery document names no jwks_uri", errProviderDown)
	}
	a.provider, a.keys = p, &refreshingKeys{url: meta.JWKS, every: a.cfg.JWKSRefresh, now: a.now}
	return a.provider, a.keys, nil
}

// refreshingKeys is the issuer's key set, fetched again every `every` so that a key the
// issuer removed stops being accepted; go-oidc's remote key set fetches on an unknown key
// id only.
type refreshingKeys struct {
	url   string
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	cur     *oidc.RemoteKeySet
	fetched time.Time
}

func (k *refreshingKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.mu.Lock()
	if now := k.now(); k.cur == nil || now.Sub(k.fetched) >= k.every || now.Before(k.fetched) {
		k.cur, k.fetched = oidc.NewRemoteKeySet(context.Background(), k.url), now
	}
	cur := k.cur
	k.mu.Unlock()
	return cur.VerifySignature(ctx, jwt)
}

// looksLikeJWT: three base64url segments, and not a Velo token.
func looksLikeJWT(tok string) bool {
	return !strings.HasPrefix(tok, tokenPrefix) && strings.Count(tok, ".") == 2
}

// oidcIdentity is who a verified token names.
type oidcIdentity struct {
	User    User
	Subject string
	Expiry  time.Time
}

// verifyToken checks a JWT (signature by the issuer's keys, issuer, audience, expiry)
// and maps its claims to a user. The error is a *Problem: 401 for a token that is not
// valid (counted as a failed authentication), 403 for a valid one naming no role or an
// unknown project, 503 when the provider cannot be reached.
func (a *oidcAuth) verifyToken(ctx context.Context, raw string, audience string, known func(project string) bool) (*oidcIdentity, error) {
	_, keys, err := a.discover(ctx)
	if err != nil {
		return nil, &Problem{Status: http.StatusServiceUnavailable, Code: CodeIdentityProviderUnavailable, cause: err,
			Detail: "the organisation's identity provider cannot be reached to check this token; retry later (Velo's own tokens still work)"}
	}
	v := oidc.NewVerifier(a.cfg.Issuer, keys, &oidc.Config{ClientID: audience, Now: a.now})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, tokenProblem(err, audience)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, problem(http.StatusUnauthorized, CodeUnauthorized, "the token's claims are not a JSON object")
	}
	id, err := a.identity(claims, tok.Subject, known)
	if err != nil {
		return nil, err
	}
	id.Expiry = tok.Expiry
	return id, nil
}

// tokenProblem says why a token was refused, in the caller's terms (never the token).
func tokenProblem(err error, audience string) *Problem {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	p := func(detail string) *Problem {
		return &Problem{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Detail: detail, cause: errors.New(detail)}
	}
	switch {
	case errors.As(err, &exp):
		return p("the token has expired: get a new one from the identity provider")
	case strings.Contains(msg, "expected audience"):
		return p(fmt.Sprintf("the token is not meant for Velo: its audience (aud) lacks %q", audience))
	case strings.Contains(msg, "issued by a different provider"):
		return p("the token was issued by another identity provider than the one Velo trusts")
	case strings.Contains(msg, "before the nbf"):
		return p("the token is not valid yet (nbf)")
	case strings.Contains(msg, "malformed jwt"):
		return p("the token is neither a Velo token nor a well-formed JWT")
	}
	return p("the token's signature does not verify with the identity provider's current keys (signed by a key it no longer publishes, or not by it)")
}

// identity maps claims to a user: name, one Velo role, and (for the roles that have
// them) projects Velo knows.
func (a *oidcAuth) identity(claims map[string]any, subject string, known func(string) bool) (*oidcIdentity, error) {
	c := a.cfg
	name := ""
	if vs := claimStrings(claims, c.UsernameClaim); len(vs) == 1 {
		name = vs[0]
	}
	if name == "" {
		name = subject
	}
	if !userNamePattern.MatchString(name) {
		return nil, problem(http.StatusForbidden, CodeForbidden, "the token's user name (claim %s) is not one Velo can record: it must match %s", c.UsernameClaim, userNamePattern)
	}
	var roles []Role
	values := claimStrings(claims, c.RoleClaim)
	for _, v := range values {
		r, ok := c.Roles[v]
		if len(c.Roles) == 0 {
			r, ok = Role(v), slices.Contains([]Role{RoleResearcher, RoleOfficial, RoleDPO, RoleAdmin}, Role(v))
		}
		if ok && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	switch len(roles) {
	case 0:
		return nil, problem(http.StatusForbidden, CodeForbidden, "the token gives no Velo role: its %s claim holds none of the roles Velo maps (docs/identity.md); ask your administrator", c.RoleClaim)
	case 1:
	default:
		return nil, problem(http.StatusForbidden, CodeForbidden, "the token gives more than one Velo role (%s); a user acts in one role: ask your administrator to keep one", joinRoles(roles))
	}
	u := User{Name: name, Role: roles[0]}
	if u.Role.queries() {
		for _, p := range claimStrings(claims, c.ProjectsClaim) {
			if !projectIDPattern.MatchString(p) || !known(p) {
				return nil, problem(http.StatusForbidden, CodeForbidden, "the token names project %q (claim %s), which Velo does not have; ask your administrator or the DPO", p, c.ProjectsClaim)
			}
			if !slices.Contains(u.Projects, p) {
				u.Projects = append(u.Projects, p)
			}
		}
	}
	return &oidcIdentity{User: u, Subject: subject}, nil
}

func joinRoles(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// claimStrings reads a claim by dotted path: a string, or the strings of an array.
func claimStrings(claims map[string]any, path string) []string {
	var v any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[part]; !ok {
			return nil
		}
	}
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// bearerJWT authenticates a JWT bearer token.
func (s *Server) bearerJWT(r *http.Request, raw string) (*User, error) {
	id, err := s.oidc.verifyToken(r.Context(), raw, s.oidc.cfg.Audience, func(p string) bool {
		_, err := s.led.Project(p)
		return err == nil
	})
	if err != nil {
		if p, ok := err.(*Problem); ok && p.Status == http.StatusUnauthorized {
			s.authFail.failed(r)
		}
		return nil, err
	}
	u := id.User
	s.identify(r, &u)
	setSubject(r, id.Subject, "jwt")
	return &u, nil
}
