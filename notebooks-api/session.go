package notebooksapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The ledger page is for people in a browser, who cannot send a bearer header. They log in
// once with their token (a form, or a one-time login code made through the API) and get a
// session cookie: random, HttpOnly, SameSite=Strict, valid only for the HTML page (the API
// takes bearer tokens only, so a cookie can never drive an API call), and ending when the
// token it was made from is revoked. The server keeps only hashes of sessions and codes.

const (
	sessionCookie = "velo_session"
	loginCodeTTL  = 60 * time.Second
	maxSessions   = 10000
)

type session struct {
	user    string
	token   [32]byte // hash of the token it was made from
	expires time.Time
	// oidc is the user of a session made by the organisation's login (oidclogin.go),
	// with the subject and the ID token (the logout's hint); nil for a token's session.
	oidc    *User
	subject string
	idToken string
}

type sessionStore struct {
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
	live map[[32]byte]session // by hash of the cookie value
	code map[[32]byte]session // one-time login codes, by hash
}

func newSessionStore(ttl time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{ttl: ttl, now: now, live: map[[32]byte]session{}, code: map[[32]byte]session{}}
}

func newSecret() (string, [32]byte) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	return v, sha256.Sum256([]byte(v))
}

// sweep drops what has expired; called with mu held.
func (st *sessionStore) sweep() {
	now := st.now()
	for k, s := range st.live {
		if now.After(s.expires) {
			delete(st.live, k)
		}
	}
	for k, s := range st.code {
		if now.After(s.expires) {
			delete(st.code, k)
		}
	}
}

// start makes a session for user (authenticated with the token of hash tok) and returns
// the cookie value.
func (st *sessionStore) start(user string, tok [32]byte) (string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweep()
	if len(st.live) >= maxSessions {
		return "", false
	}
	v, h := newSecret()
	st.live[h] = session{user: user, token: tok, expires: st.now().Add(st.ttl)}
	return v, true
}

// startOIDC makes a session for a user of the organisation's login.
func (st *sessionStore) startOIDC(u User, subject, idToken string) (string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweep()
	if len(st.live) >= maxSessions {
		return "", false
	}
	v, h := newSecret()
	st.live[h] = session{user: u.Name, expires: st.now().Add(st.ttl), oidc: &u, subject: subject, idToken: idToken}
	return v, true
}

func (st *sessionStore) get(v string) (session, bool) {
	h := sha256.Sum256([]byte(v))
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.live[h]
	if !ok || st.now().After(s.expires) {
		delete(st.live, h)
		return session{}, false
	}
	return s, true
}

func (st *sessionStore) end(v string) {
	h := sha256.Sum256([]byte(v))
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.live, h)
}

// newCode makes a one-time login code.
func (st *sessionStore) newCode(user string, tok [32]byte) (string, time.Time, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweep()
	if len(st.code) >= maxSessions {
		return "", time.Time{}, false
	}
	v, h := newSecret()
	exp := st.now().Add(loginCodeTTL)
	st.code[h] = session{user: user, token: tok, expires: exp}
	return v, exp, true
}

// redeem uses up a login code.
func (st *sessionStore) redeem(v string) (session, bool) {
	h := sha256.Sum256([]byte(v))
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.code[h]
	delete(st.code, h)
	if !ok || st.now().After(s.expires) {
		return session{}, false
	}
	return s, true
}

// LoginCode is the body of POST /v1/login-codes.
type LoginCode struct {
	LoginURL  string    `json:"login_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// loginCode makes a one-time code that opens the ledger page in a browser (DPO only): the
// DPO's script or terminal holds the token, the browser gets only a session.
//
// The link is a path, which the client resolves against the URL it sent the request to
// (RFC 3986, section 5): the server cannot build the absolute form, since it does not know
// the address its clients reach it by — behind a reverse proxy or a TLS terminator the Host
// and scheme it sees are the proxy's, and forwarding headers are not trusted (a client can
// forge them).
func (s *Server) loginCode(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	if info := infoOf(r.Context()); info != nil && info.via == "jwt" {
		// A code stands for a Velo token, which the page checks on every load.
		return problem(http.StatusForbidden, CodeForbidden, "login codes are for Velo's own tokens: with the organisation's account, log in on the page itself (GET /login, \"Log in with your organisation's account\")")
	}
	_, tok, _ := s.users.Load().lookup(bearerToken(r))
	code, exp, ok := s.sessions.newCode(u.Name, tok)
	if !ok {
		return problem(http.StatusServiceUnavailable, CodeInternal, "too many login codes outstanding; retry in a minute")
	}
	return writeJSON(w, http.StatusCreated, LoginCode{LoginURL: "/login?code=" + url.QueryEscape(code), ExpiresAt: exp.UTC()})
}

func bearerToken(r *http.Request) string {
	_, t, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.TrimSpace(t)
}

// loginForm shows the login form, or redeems a one-time code from the URL and redirects
// to the page (so the code leaves the address bar at once).
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) error {
	if code := r.URL.Query().Get("code"); code != "" {
		if p := s.authFail.refuse(r); p != nil {
			return s.loginRefused(w, r, p)
		}
		sess, ok := s.sessions.redeem(code)
		if ok {
			if u, held := s.users.Load().holds(sess.user, sess.token); held {
				s.identify(r, u)
				return s.startSession(w, r, u, sess.token)
			}
		}
		s.authFail.failed(r)
		return s.renderLogin(w, r, http.StatusUnauthorized, "That login link is not valid: it was used already or has expired. Log in with your token.")
	}
	return s.renderLogin(w, r, http.StatusOK, "")
}

// login checks a token posted from the form and starts a session for a DPO.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	if !sameOrigin(r) {
		return s.renderLogin(w, r, http.StatusForbidden, "The login form must be sent from this server's own page.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return s.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.")
	}
	if p := s.authFail.refuse(r); p != nil {
		return s.loginRefused(w, r, p)
	}
	u, tok, ok := s.users.Load().lookup(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		s.authFail.failed(r)
		return s.renderLogin(w, r, http.StatusUnauthorized, "That token is not valid.")
	}
	s.identify(r, u)
	if u.Role != RoleDPO {
		return s.renderLogin(w, r, http.StatusForbidden, "The ledger page is for the DPO; this token's role is "+string(u.Role)+".")
	}
	return s.startSession(w, r, u, tok)
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *User, tok [32]byte) error {
	if u.Role != RoleDPO {
		return s.renderLogin(w, r, http.StatusForbidden, "The ledger page is for the DPO.")
	}
	v, ok := s.sessions.start(u.Name, tok)
	if !ok {
		return s.renderLogin(w, r, http.StatusServiceUnavailable, "Too many sessions; try again later.")
	}
	s.setSessionCookie(w, r, v)
	http.Redirect(w, r, "/ledger", http.StatusSeeOther)
	return nil
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, v string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", HttpOnly: true, Secure: s.secure || r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.limits.SessionTTL / time.Second)})
}

// logout ends the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if !sameOrigin(r) {
		return s.renderLogin(w, r, http.StatusForbidden, "The logout form must be sent from this server's own page.")
	}
	provider := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		if sess, ok := s.sessions.get(c.Value); ok && sess.oidc != nil {
			provider = s.oidcLogoutURL(r, sess.idToken)
		}
		s.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.secure || r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	if provider != "" {
		// The provider ends its session too, then sends the browser back to /login.
		return s.renderContinue(w, r, "continue.logout", provider)
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// sameOrigin refuses a form posted from another site (the cookie is SameSite=Strict too).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin" || r.Header.Get("Sec-Fetch-Site") == "none"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// page adapts a handler of the HTML page: a bearer token or a session cookie; without
// either, the browser is sent to the login form.
func (s *Server) page(f apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var u *User
		if r.Header.Get("Authorization") != "" {
			var err error
			if u, err = s.bearer(r); err != nil {
				s.fail(w, r, err)
				return
			}
		} else if c, err := r.Cookie(sessionCookie); err == nil {
			if sess, ok := s.sessions.get(c.Value); ok && sess.oidc != nil {
				cp := *sess.oidc
				u = &cp
				setSubject(r, sess.subject, "oidc-session")
			} else if ok {
				u, _ = s.users.Load().holds(sess.user, sess.token)
				setSubject(r, "", "session")
			}
		}
		if u == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		s.identify(r, u)
		if u.Role != RoleDPO {
			_ = s.renderLogin(w, r, http.StatusForbidden, "The ledger page is for the DPO; this token's role is "+string(u.Role)+".")
			return
		}
		if err := f(w, r, u); err != nil {
			info := infoOf(r.Context())
			p := asProblem(err)
			if info != nil {
				info.cause, info.code = err, p.Code
			}
			_ = s.renderLogin(w, r, p.Status, p.Detail)
		}
	})
}
