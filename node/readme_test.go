package node_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's embedding example is this package's Example, word for word.
func TestREADMEEmbeddingExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	body := string(src)
	body = body[strings.Index(body, "func Example() {"):]
	body = strings.TrimRight(body[:strings.Index(body, "\t// Output:")], "\n\t ") + "\n}\n"
	require.Contains(t, string(readme), body, "README.md must show node.Example as it is")
}
