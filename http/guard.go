package http

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// guard refuses what the API must not serve: a request without a valid
// bearer token when tokens are configured (401), and a cross-site browser
// request whose Origin is not allowed (403). /ping, /healthz and /readyz
// stay open, for probes.
// Clients that send no Origin (curl, servers, the Go client) are not
// affected by the origin rule; a page served by the node itself (same
// host) is allowed.
type guard struct {
	next    http.Handler
	tokens  [][]byte
	origins map[string]bool // allowed origins, "scheme://host[:port]", lower case; "*" allows any
	public  map[string]bool // GET paths served without a token (Options.Public)
}

func newGuard(next http.Handler, tokens, origins []string, public map[string]bool) http.Handler {
	g := &guard{next: next, origins: map[string]bool{}, public: public}
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			g.tokens = append(g.tokens, []byte(t))
		}
	}
	for _, o := range origins {
		if o = strings.TrimRight(strings.ToLower(strings.TrimSpace(o)), "/"); o != "" {
			g.origins[o] = true
		}
	}
	return g
}

// Reasons of the guard's refusals.
const (
	reasonToken  = "A valid bearer token is required (Authorization: Bearer <token>)"
	reasonOrigin = "Cross-site request refused: its Origin is not allowed (--http:allow-origin)"
)

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && !g.allowedOrigin(origin, r.Host) {
		writeError(w, http.StatusForbidden, reasonOrigin)
		return
	}
	if len(g.tokens) > 0 && !openPath(r.URL.Path) && !g.isPublic(r) && !g.validToken(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="skyring"`)
		writeError(w, http.StatusUnauthorized, reasonToken)
		return
	}
	g.next.ServeHTTP(w, r)
}

// isPublic reports whether r is a GET of a public path.
func (g *guard) isPublic(r *http.Request) bool {
	return r.Method == http.MethodGet && g.public[r.URL.Path]
}

// Paths of the probes, served without a token like /ping.
const (
	healthzPath = "/healthz"
	readyzPath  = "/readyz"
)

// openPath reports whether path is served without a token: /ping and the
// probes /healthz and /readyz (their routes are the node's, Options.Extra).
func openPath(path string) bool {
	return path == pingPath || path == healthzPath || path == readyzPath
}

// allowedOrigin reports whether a request from a page of origin may be
// served: the same host as the request (a page of the node itself), or an
// origin the operator allowed. "null" (a sandboxed or file page) is allowed
// only by "*".
func (g *guard) allowedOrigin(origin, host string) bool {
	if g.origins["*"] {
		return true
	}
	o := strings.TrimRight(strings.ToLower(origin), "/")
	if g.origins[o] {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// validToken checks an Authorization header against every configured
// token in constant time.
func (g *guard) validToken(auth string) bool {
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := []byte(strings.TrimSpace(auth[len(prefix):]))
	ok := 0
	for _, t := range g.tokens {
		ok |= subtle.ConstantTimeCompare(got, t)
	}
	return ok == 1
}
