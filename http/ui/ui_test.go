package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/http/ui"
)

func TestRoutes(t *testing.T) {
	routes := ui.Routes()
	for path, want := range map[string]string{
		"/ui":         "text/html",
		"/ui/":        "text/html",
		"/ui/app.js":  "text/javascript",
		"/ui/app.css": "text/css",
	} {
		rec := httptest.NewRecorder()
		routes[path].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), want), path)
		require.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'", path)
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		b, _ := io.ReadAll(rec.Body)
		require.NotEmpty(t, b, path)
	}
	// The page loads its script and style from where they are served.
	rec := httptest.NewRecorder()
	routes["/ui"].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui", nil))
	require.Contains(t, rec.Body.String(), `src="/ui/app.js"`)
	require.Contains(t, rec.Body.String(), `href="/ui/app.css"`)

	rec = httptest.NewRecorder()
	routes["/"].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusFound, rec.Code)
	require.Equal(t, "/ui", rec.Header().Get("Location"))
}
