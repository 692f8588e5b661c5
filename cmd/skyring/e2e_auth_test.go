package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHTTPTokenAndOrigin runs the real binary with bearer tokens (one on the
// command line, one from a file: a rotation) and checks what a user sees:
// no token, a wrong one, 401 with a reason; either token works; /ping is
// open for probes; a cross-site text/plain POST from a foreign page (an
// Origin header) is a 403 even with a token, and an allowed origin works.
func TestHTTPTokenAndOrigin(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("# rotated in\nsecond-token\n"), 0o600))
	p := startNode(t, "--http:token", "first-token", "--http:token-file", file, "--http:allow-origin", "https://app.example.com")
	b := body(s, "/cb/auth")

	r := p.do(t, http.MethodPost, "/timer", b)
	requireError(t, r, http.StatusUnauthorized, "create without a token")
	require.Contains(t, r.Header.Get("x-skyring-reason"), "bearer token")
	requireError(t, p.do(t, http.MethodPost, "/timer", b, "Authorization", "Bearer wrong"), http.StatusUnauthorized, "a wrong token")
	requireError(t, p.do(t, http.MethodGet, "/cluster", nil), http.StatusUnauthorized, "/cluster without a token")
	for _, tok := range []string{"first-token", "second-token"} {
		r = p.do(t, http.MethodPost, "/timer", b, "Authorization", "Bearer "+tok)
		require.Equal(t, http.StatusCreated, r.Status, "create with %s: %s", tok, r)
	}
	require.Equal(t, http.StatusOK, p.do(t, http.MethodGet, "/ping", nil).Status, "/ping stays open for probes")

	// A web page on another site posting text/plain (no preflight).
	r = p.do(t, http.MethodPost, "/timer", `{"timeout":1000,"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:1/x"}}`,
		"Content-Type", "text/plain", "Origin", "https://evil.example", "Authorization", "Bearer first-token")
	requireError(t, r, http.StatusForbidden, "a cross-site POST")
	require.True(t, strings.Contains(r.Header.Get("x-skyring-reason"), "Origin"), r.Header.Get("x-skyring-reason"))
	r = p.do(t, http.MethodPost, "/timer", b, "Origin", "https://app.example.com", "Authorization", "Bearer second-token")
	require.Equal(t, http.StatusCreated, r.Status, "an allowed origin: %s", r)

	// Tokens never show in the log.
	require.NotContains(t, p.Output(), "first-token")
	require.NotContains(t, p.Output(), "second-token")
}

// TestHTTPTokenFileEmpty: a token file without a token is a startup error,
// not an open API.
func TestHTTPTokenFileEmpty(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("\n# nothing\n"), 0o600))
	stdout, stderr, code := runCLI(t, 20*time.Second, nil, "run", "-p", "-1", "--nats:port", "-1", "--channel:port", "-1", "--storage:path", t.TempDir(), "--http:token-file", file)
	require.NotZero(t, code, stdout+stderr)
	require.Contains(t, stdout+stderr, "holds no token")
}
