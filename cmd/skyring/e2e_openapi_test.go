package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

// routeNotFound is the reason of the 404 an unknown route gets (a timer
// that does not exist says "Timer not found").
const routeNotFound = "Not Found"

// TestOpenAPIMatchesLiveRoutes: docs/openapi.yaml is a valid OpenAPI 3
// document, and it and a real node agree: every documented path and method
// is served (no route 404, no 405) with a documented status and, for JSON
// answers, a body its schema accepts; every other method on those paths,
// and every path the node or the other parts of the project might serve,
// is a route 404 unless documented.
func TestOpenAPIMatchesLiveRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../docs/openapi.yaml")
	require.NoError(t, err)
	require.NoError(t, doc.Validate(ctx), "docs/openapi.yaml is not valid OpenAPI 3")

	s := newSink(t)
	p := startNode(t)
	id, _ := p.createTimer(t, body(s, "/cb/never"), "x-timer-id", "openapi-1")
	require.Equal(t, "openapi-1", id)

	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		live := strings.ReplaceAll(path, "{id}", id)
		for _, m := range methods {
			op := item.GetOperation(m)
			var b any
			if m == http.MethodPost || m == http.MethodPut {
				b = body(s, "/cb/never")
			}
			r := p.do(t, m, live, b)
			if op == nil {
				require.Equal(t, http.StatusNotFound, r.Status, "%s %s is not documented but answers %d", m, live, r.Status)
				require.Equal(t, routeNotFound, r.Reason(), "%s %s is not documented but is served", m, live)
				continue
			}
			require.False(t, r.Status == http.StatusNotFound && r.Reason() == routeNotFound, "%s %s is documented but not served", m, path)
			require.NotEqual(t, http.StatusMethodNotAllowed, r.Status, "%s %s", m, path)
			resp := op.Responses.Status(r.Status)
			require.NotNil(t, resp, "%s %s answered %d, which the document does not list (%s)", m, path, r.Status, r.Reason())
			if mt := resp.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil && len(r.Body) > 0 {
				var v any
				require.NoError(t, json.Unmarshal(r.Body, &v), "%s %s: body %q", m, path, r.Body)
				require.NoError(t, mt.Schema.Value.VisitJSON(v), "%s %s %d: body %s does not match the schema", m, path, r.Status, r.Body)
			}
			t.Logf("%s %s: %d", m, path, r.Status)
		}
	}

	// Paths this node (or another part of the project) may serve: each
	// that is served must be documented.
	for _, path := range []string{"/", "/ping", "/cluster", "/timer", "/metrics", "/healthz", "/readyz", "/ui", "/ui/", "/debug/pprof/", "/timers", "/api", "/openapi.yaml", "/version", "/status", "/health"} {
		if doc.Paths.Value(path) != nil {
			continue
		}
		r := p.do(t, http.MethodGet, path, nil)
		require.True(t, r.Status == http.StatusNotFound && r.Reason() == routeNotFound,
			"GET %s answers %d but docs/openapi.yaml does not document it", path, r.Status)
	}

	// Every status a documented error answer has carries the JSON body.
	r := p.do(t, http.MethodPost, "/timer", map[string]any{"timeout": "soon"})
	require.Equal(t, http.StatusBadRequest, r.Status)
	var e struct{ Message string }
	require.NoError(t, json.Unmarshal(r.Body, &e))
	require.Equal(t, r.Reason(), e.Message)
	require.NotNil(t, doc.Paths.Value("/timer").Post.Responses.Status(400), strconv.Itoa(400))
	require.True(t, slices.Contains(doc.Paths.InMatchingOrder(), "/timer/{id}/retry"))
}
