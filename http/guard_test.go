package http

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGuard(t *testing.T) {
	t.Parallel()
	open := NewHandler(newMemService(), Options{})
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	locked := NewHandler(newMemService(), Options{
		Tokens: []string{"old-token", " new-token "}, AllowOrigins: []string{"https://app.example.com/"},
		Extra: map[string]http.Handler{"/cluster": page}, Public: map[string]http.Handler{"/page": page},
	})
	star := NewHandler(newMemService(), Options{AllowOrigins: []string{"*"}})
	probe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	probes := NewHandler(newMemService(), Options{Tokens: []string{"old-token"}, Extra: map[string]http.Handler{
		"/healthz": probe, "/readyz": probe, "/metrics": probe,
	}})
	for _, tc := range []struct {
		name    string
		h       http.Handler
		method  string
		path    string
		headers map[string]string
		want    int
		reason  string
	}{
		{"no tokens, no origin", open, http.MethodGet, "/timer/x", nil, http.StatusNotFound, "Timer not found"},
		{"no tokens, foreign origin", open, http.MethodPost, "/timer", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden, reasonOrigin},
		{"no tokens, same host origin", open, http.MethodGet, "/timer/x", map[string]string{"Origin": "http://node.local:3000"}, http.StatusNotFound, "Timer not found"},
		{"no tokens, null origin", open, http.MethodPost, "/timer", map[string]string{"Origin": "null"}, http.StatusForbidden, reasonOrigin},
		{"star allows any origin", star, http.MethodGet, "/timer/x", map[string]string{"Origin": "https://evil.example"}, http.StatusNotFound, "Timer not found"},
		{"missing token", locked, http.MethodGet, "/timer/x", nil, http.StatusUnauthorized, reasonToken},
		{"wrong token", locked, http.MethodGet, "/timer/x", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized, reasonToken},
		{"not bearer", locked, http.MethodGet, "/timer/x", map[string]string{"Authorization": "Basic b2xkLXRva2Vu"}, http.StatusUnauthorized, reasonToken},
		{"old token", locked, http.MethodGet, "/timer/x", map[string]string{"Authorization": "Bearer old-token"}, http.StatusNotFound, "Timer not found"},
		{"new token, any case of Bearer", locked, http.MethodGet, "/timer/x", map[string]string{"Authorization": "bearer new-token"}, http.StatusNotFound, "Timer not found"},
		{"a prefix of a token", locked, http.MethodGet, "/timer/x", map[string]string{"Authorization": "Bearer old"}, http.StatusUnauthorized, reasonToken},
		{"ping stays open", locked, http.MethodGet, "/ping", nil, http.StatusOK, ""},
		{"a public page needs no token", locked, http.MethodGet, "/page", nil, http.StatusOK, ""},
		{"a public page only for GET", locked, http.MethodPost, "/page", nil, http.StatusUnauthorized, reasonToken},
		{"an extra route needs the token", locked, http.MethodGet, "/cluster", nil, http.StatusUnauthorized, reasonToken},
		{"a public page still checks Origin", locked, http.MethodGet, "/page", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden, reasonOrigin},
		{"healthz stays open", probes, http.MethodGet, "/healthz", nil, http.StatusNoContent, ""},
		{"readyz stays open", probes, http.MethodGet, "/readyz", nil, http.StatusNoContent, ""},
		{"metrics needs the token", probes, http.MethodGet, "/metrics", nil, http.StatusUnauthorized, reasonToken},
		{"metrics with the token", probes, http.MethodGet, "/metrics", map[string]string{"Authorization": "Bearer old-token"}, http.StatusNoContent, ""},
		{"allowed origin with token", locked, http.MethodGet, "/timer/x", map[string]string{"Authorization": "Bearer old-token", "Origin": "https://APP.example.com"}, http.StatusNotFound, "Timer not found"},
		{"foreign origin with a valid token", locked, http.MethodPost, "/timer", map[string]string{"Authorization": "Bearer old-token", "Origin": "https://evil.example"}, http.StatusForbidden, reasonOrigin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://node.local:3000"+tc.path, strings.NewReader(`{}`))
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			require.Equal(t, tc.want, w.Code)
			require.Equal(t, tc.reason, w.Header().Get("X-Skyring-Reason"))
			if tc.want == http.StatusUnauthorized {
				require.Equal(t, `Bearer realm="skyring"`, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}
