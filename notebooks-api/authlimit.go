package notebooksapi

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Failed authentications are limited per client address. A token is 256 random bits, so
// guessing one is hopeless; the limit keeps a guesser from costing the server hashing, log
// lines and connections, and makes a scan visible. After limits.max_auth_failures failures
// (a token, a login form or a login code that does not match) within
// limits.auth_failure_window, the address is refused with 429 and Retry-After for one window,
// whatever it sends, a valid token included: a refusal that depended on the token would tell
// the guesser which one is valid. Requests without a token are not failures. Other addresses
// are unaffected.
//
// The address is the TCP peer (an IPv6 peer by its /64, which one host usually holds whole),
// never a forwarding header, which a client could forge; behind a reverse proxy every client
// shares the proxy's address, so set the proxy's own limit there, or max_auth_failures
// negative to turn this off.

// CodeTooManyAuthFailures: the client's address is locked out after failed authentications.
const CodeTooManyAuthFailures = "too_many_auth_failures"

// maxAuthAddrs bounds the addresses tracked; beyond it, addresses that are not locked out
// are forgotten first.
const maxAuthAddrs = 10000

type authLimiter struct {
	max    int // failures that lock an address out; <= 0: no limit
	window time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu    sync.Mutex
	addrs map[string]*authFailures
}

type authFailures struct {
	n     int       // failures since first
	first time.Time // start of the current window
	until time.Time // locked out until then
}

func newAuthLimiter(max int, window time.Duration, now func() time.Time, log *slog.Logger) *authLimiter {
	return &authLimiter{max: max, window: window, now: now, log: log, addrs: map[string]*authFailures{}}
}

// clientKey is the address a request's failures count against.
func clientKey(r *http.Request) string { return addrKey(r.RemoteAddr) }

// addrKey is the key of a client address (host:port): the host, or for IPv6 its /64.
func addrKey(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
}

// refuse returns the 429 problem if r's address is locked out, else nil.
func (a *authLimiter) refuse(r *http.Request) *Problem { return a.refuseKey(clientKey(r)) }

// refuseKey is refuse for an address key (addrKey).
func (a *authLimiter) refuseKey(key string) *Problem {
	if a.max <= 0 {
		return nil
	}
	now := a.now()
	a.mu.Lock()
	f := a.addrs[key]
	var left time.Duration
	if f != nil {
		left = f.until.Sub(now)
	}
	a.mu.Unlock()
	if left <= 0 {
		return nil
	}
	secs := int((left + time.Second - 1) / time.Second)
	p := problem(http.StatusTooManyRequests, CodeTooManyAuthFailures, "too many failed authentications from your address: requests from it are refused for %d seconds (nothing was charged)", secs)
	p.retryAfter = secs
	return p
}

// loginRefused answers the login form (or a login link) from a locked-out address.
func (s *Server) loginRefused(w http.ResponseWriter, r *http.Request, p *Problem) error {
	w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	if info := infoOf(r.Context()); info != nil {
		info.code = p.Code
	}
	return s.renderLogin(w, r, p.Status, p.Detail)
}

// failed counts a failed authentication from r's address, locking it out at the limit.
func (a *authLimiter) failed(r *http.Request) { a.failedKey(clientKey(r)) }

// failedKey is failed for an address key (addrKey).
func (a *authLimiter) failedKey(key string) {
	if a.max <= 0 {
		return
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.addrs[key]
	if f == nil {
		if len(a.addrs) >= maxAuthAddrs {
			a.forget(now)
		}
		f = &authFailures{first: now}
		a.addrs[key] = f
	}
	if now.Sub(f.first) >= a.window {
		f.n, f.first = 0, now
	}
	f.n++
	if f.n >= a.max && !f.until.After(now) {
		f.until = now.Add(a.window)
		f.n, f.first = 0, f.until
		// The address and the count only: never what was sent.
		a.log.Warn("too many failed authentications: locking out a client address", "addr", key, "failures", a.max, "for", a.window.String())
	}
}

// forget drops addresses whose window has passed and that are not locked out, and if that
// is not enough, every address not locked out. Called with mu held.
func (a *authLimiter) forget(now time.Time) {
	for k, f := range a.addrs {
		if !f.until.After(now) && now.Sub(f.first) >= a.window {
			delete(a.addrs, k)
		}
	}
	if len(a.addrs) < maxAuthAddrs {
		return
	}
	for k, f := range a.addrs {
		if !f.until.After(now) {
			delete(a.addrs, k)
		}
	}
}
