// Package ui is the node's dashboard: a page at /ui, embedded in the binary
// with its script and style (no front-end build step), that polls the node's
// own API — GET /cluster, GET /metrics, GET /timer?state=failed — and shows
// the ring's members and their timer counts, creates and deliveries per
// second, the fire-lateness histogram, pending timers by due time and the
// failed timers, each with a button that retries it (POST
// /timer/:id/retry).
//
// The assets hold no data, so they are served without a token; the page
// asks for the API token when the node wants one and sends it as a bearer
// token on its API calls (kept in the tab's sessionStorage only). A
// Content-Security-Policy limits the page to the node's own origin.
package ui

import (
	"bytes"
	"embed"
	"net/http"
	"time"
)

//go:embed static
var static embed.FS

// Path is where the dashboard is served.
const Path = "/ui"

// csp allows the page only what it does: its own script, style and API
// calls on the node's origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Routes are the dashboard's GET routes by exact path: the page (at /ui and
// /ui/), its assets, and / redirecting to it.
func Routes() map[string]http.Handler {
	routes := map[string]http.Handler{
		"/": http.RedirectHandler(Path, http.StatusFound),
	}
	page := asset("static/index.html", "text/html; charset=utf-8")
	routes[Path] = page
	routes[Path+"/"] = page
	routes[Path+"/app.js"] = asset("static/app.js", "text/javascript; charset=utf-8")
	routes[Path+"/app.css"] = asset("static/app.css", "text/css; charset=utf-8")
	return routes
}

// started is the assets' modification time (they change only with the
// binary).
var started = time.Now()

func asset(name, contentType string) http.Handler {
	b, err := static.ReadFile(name)
	if err != nil {
		panic("ui: missing embedded asset " + name) // a build mistake, caught by the tests
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, started, bytes.NewReader(b))
	})
}
