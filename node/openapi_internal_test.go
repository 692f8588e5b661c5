package node

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// Every route the node adds to the HTTP edge (GET /cluster, ...) is in the
// OpenAPI document; cmd/skyring's e2e test checks the document against a
// live node.
func TestExtraRoutesDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	routes := (&Node{}).extraRoutes()
	require.NotEmpty(t, routes)
	for path := range routes {
		require.Contains(t, doc.Paths, path, "GET %s is served but not in docs/openapi.yaml", path)
		require.Contains(t, doc.Paths[path], "get", "GET %s is served but not documented", path)
	}
}
