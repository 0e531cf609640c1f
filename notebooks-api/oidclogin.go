package notebooksapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The DPO page's login through the organisation's OpenID provider: the authorization code
// flow with PKCE (S256), state and nonce.
//
//  1. GET /login/oidc draws a state, a nonce and a PKCE verifier, keeps them on the server
//     (ten minutes, one use) and binds the state to the browser with a cookie
//     (velo_oidc: HttpOnly, SameSite=Lax so that the provider's redirect back carries it,
//     path /login/oidc), then sends the browser to the provider.
//  2. GET /login/oidc/callback checks that the state is the browser's and known, swaps
//     the code (with the verifier and the client's secret) for tokens at the token
//     endpoint, verifies the ID token (signature, issuer, audience client_id, expiry, the
//     nonce) and takes the user, role and projects from the access token when it is a JWT
//     for Velo's audience of the same subject, else from the ID token, as a bearer JWT's
//     (oidc.go). A DPO gets the same session cookie as the token login; other roles are
//     refused.
//  3. POST /logout ends the session and, for an OIDC session, moves the browser on to the
//     provider's end_session_endpoint (a page, not a redirect: the pages allow forms to
//     post to Velo only, redirects included) to end the provider's session too.
//
// The tokens stay on the server (the ID token, for the logout hint) and never reach a log.

const (
	oidcStateCookie = "velo_oidc"
	oidcFlowTTL     = 10 * time.Minute
)

type oidcFlow struct {
	verifier string
	nonce    string
	expires  time.Time
}

// oidcFlows are the logins in progress, by hash of their state.
type oidcFlows struct {
	mu   sync.Mutex
	live map[[32]byte]oidcFlow
}

func (f *oidcFlows) put(state string, fl oidcFlow, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live == nil {
		f.live = map[[32]byte]oidcFlow{}
	}
	for k, v := range f.live {
		if now.After(v.expires) {
			delete(f.live, k)
		}
	}
	if len(f.live) >= maxSessions {
		return false
	}
	f.live[sha256.Sum256([]byte(state))] = fl
	return true
}

func (f *oidcFlows) take(state string, now time.Time) (oidcFlow, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := sha256.Sum256([]byte(state))
	fl, ok := f.live[h]
	delete(f.live, h)
	return fl, ok && !now.After(fl.expires)
}

// oidcPageLogin reports whether the page offers the organisation's login.
func (s *Server) oidcPageLogin() bool { return s.oidc != nil && s.oidc.cfg.RedirectURL != "" }

func (s *Server) oauth2Config(p *oidc.Provider) *oauth2.Config {
	c := s.oidc.cfg
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: c.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "profile"}}
}

// oidcStart sends the browser to the provider.
func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) error {
	if !s.oidcPageLogin() {
		return problem(http.StatusNotFound, CodeNotFound, "this server has no organisation login (velo.yaml's oidc section with redirect_url)")
	}
	p, _, err := s.oidc.discover(r.Context())
	if err != nil {
		if info := infoOf(r.Context()); info != nil {
			info.cause = err
		}
		return s.renderLogin(w, r, http.StatusServiceUnavailable, "The organisation's identity provider cannot be reached; try again later, or log in with a token.")
	}
	state, _ := newSecret()
	nonce, _ := newSecret()
	verifier := oauth2.GenerateVerifier()
	if !s.oidcFlows.put(state, oidcFlow{verifier: verifier, nonce: nonce, expires: s.now().Add(oidcFlowTTL)}, s.now()) {
		return s.renderLogin(w, r, http.StatusServiceUnavailable, "Too many logins in progress; try again in a few minutes.")
	}
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: state, Path: "/login/oidc", HttpOnly: true, Secure: s.secure || r.TLS != nil,
		SameSite: http.SameSiteLaxMode, MaxAge: int(oidcFlowTTL / time.Second)})
	http.Redirect(w, r, s.oauth2Config(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
	return nil
}

// oidcCallback finishes the login.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	if !s.oidcPageLogin() {
		return problem(http.StatusNotFound, CodeNotFound, "this server has no organisation login (velo.yaml's oidc section with redirect_url)")
	}
	if p := s.authFail.refuse(r); p != nil {
		return s.loginRefused(w, r, p)
	}
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: "", Path: "/login/oidc", HttpOnly: true, Secure: s.secure || r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	q := r.URL.Query()
	state := q.Get("state")
	c, cerr := r.Cookie(oidcStateCookie)
	flow, ok := s.oidcFlows.take(state, s.now())
	if state == "" || cerr != nil || c.Value != state || !ok {
		s.authFail.failed(r)
		return s.renderLogin(w, r, http.StatusUnauthorized, "That login did not start in this browser, or took more than ten minutes. Log in again.")
	}
	if e := q.Get("error"); e != "" {
		// The provider's error code only (a word such as access_denied), never its description.
		code := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r == '_' {
				return r
			}
			return -1
		}, e)
		return s.renderLogin(w, r, http.StatusUnauthorized, "The identity provider did not log you in ("+code+").")
	}
	p, _, err := s.oidc.discover(r.Context())
	if err != nil {
		return s.renderLogin(w, r, http.StatusServiceUnavailable, "The organisation's identity provider cannot be reached; try again later.")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	tok, err := s.oauth2Config(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(flow.verifier))
	if err != nil {
		s.authFail.failed(r)
		if info := infoOf(r.Context()); info != nil {
			info.cause = errors.New("oidc: the code exchange failed")
		}
		return s.renderLogin(w, r, http.StatusUnauthorized, "The identity provider did not accept the login's code; log in again.")
	}
	rawID, _ := tok.Extra("id_token").(string)
	id, err := s.oidcIdentity(ctx, rawID, tok.AccessToken, flow.nonce)
	if err != nil {
		var pr *Problem
		if errors.As(err, &pr) {
			if pr.Status == http.StatusUnauthorized {
				s.authFail.failed(r)
			}
			return s.renderLogin(w, r, pr.Status, "The organisation's login was refused: "+pr.Detail+".")
		}
		return err
	}
	u := id.User
	s.identify(r, &u)
	setSubject(r, id.Subject, "oidc")
	if u.Role != RoleDPO {
		return s.renderLogin(w, r, http.StatusForbidden, "The ledger page is for the DPO; your role is "+string(u.Role)+".")
	}
	v, ok := s.sessions.startOIDC(u, id.Subject, rawID)
	if !ok {
		return s.renderLogin(w, r, http.StatusServiceUnavailable, "Too many sessions; try again later.")
	}
	s.setSessionCookie(w, r, v)
	// A page that moves on to /ledger rather than a redirect: the session cookie is
	// SameSite=Strict, and a redirect chain that began at the provider is cross-site.
	return s.renderContinue(w, r, "continue.login", "/ledger", u.Name)
}

// renderContinue answers with a page that moves the browser on to next (a meta refresh):
// used where a redirect would not do (a cookie SameSite=Strict after a cross-site chain; a
// form's redirect to another origin, which the pages' form-action 'self' forbids).
func (s *Server) renderContinue(w http.ResponseWriter, r *http.Request, key, next string, args ...any) error {
	l := langOf(r)
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "continue.html", map[string]any{"L": l, "CSS": template.CSS(pageCSS), "Title": tr(l, key+".title"), "Message": tr(l, key, args...), "Next": next}); err != nil {
		return err
	}
	w.Header().Set("Content-Language", l.Code())
	writeHTML(w, http.StatusOK, buf.Bytes())
	return nil
}

// oidcIdentity verifies the ID token (with its nonce) and maps the claims of the access
// token (a JWT for Velo's audience, same subject) or else of the ID token.
func (s *Server) oidcIdentity(ctx context.Context, rawID, access, nonce string) (*oidcIdentity, error) {
	if rawID == "" {
		return nil, problem(http.StatusUnauthorized, CodeUnauthorized, "the identity provider sent no ID token")
	}
	known := func(p string) bool { _, err := s.led.Project(p); return err == nil }
	_, keys, err := s.oidc.discover(ctx)
	if err != nil {
		return nil, err
	}
	v := oidc.NewVerifier(s.oidc.cfg.Issuer, keys, &oidc.Config{ClientID: s.oidc.cfg.ClientID, Now: s.now})
	idt, err := v.Verify(ctx, rawID)
	if err != nil {
		return nil, tokenProblem(err, s.oidc.cfg.ClientID)
	}
	if idt.Nonce != nonce {
		return nil, problem(http.StatusUnauthorized, CodeUnauthorized, "the ID token's nonce is not this login's")
	}
	if looksLikeJWT(access) {
		id, err := s.oidc.verifyToken(ctx, access, s.oidc.cfg.Audience, known)
		if err == nil && id.Subject != idt.Subject {
			return nil, problem(http.StatusUnauthorized, CodeUnauthorized, "the access token and the ID token name different subjects")
		}
		var pr *Problem
		if err == nil || (errors.As(err, &pr) && pr.Status == http.StatusForbidden) {
			return id, err
		}
		// An access token not for Velo's audience: the ID token's claims instead.
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, problem(http.StatusUnauthorized, CodeUnauthorized, "the ID token's claims are not a JSON object")
	}
	return s.oidc.identity(claims, idt.Subject, known)
}

// oidcLogoutURL is where the browser goes after an OIDC session's logout: the provider's
// end_session_endpoint, back to the login form; "" when the provider has none.
func (s *Server) oidcLogoutURL(r *http.Request, idToken string) string {
	if s.oidc == nil {
		return ""
	}
	p, _, err := s.oidc.discover(r.Context())
	if err != nil {
		return ""
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if p.Claims(&meta) != nil || meta.EndSession == "" {
		return ""
	}
	back, err := url.Parse(s.oidc.cfg.RedirectURL)
	if err != nil {
		return ""
	}
	back.Path, back.RawQuery = "/login", ""
	u, err := url.Parse(meta.EndSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", s.oidc.cfg.ClientID)
	q.Set("post_logout_redirect_uri", back.String())
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
