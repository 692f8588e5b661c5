package skyringcli

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The compose file must configure nodes only through variables the binary
// reads.
func TestComposeEnvironmentMatchesFlags(t *testing.T) {
	data, err := os.ReadFile("../../compose/docker-compose.yml")
	require.NoError(t, err)
	known := map[string]bool{}
	for _, f := range New().cliApp(nil).Command("run").Flags {
		for _, e := range f.(interface{ GetEnvVars() []string }).GetEnvVars() {
			known[e] = true
		}
	}
	used := regexp.MustCompile(`(SKYRING_[A-Z_]+):`).FindAllStringSubmatch(string(data), -1)
	require.NotEmpty(t, used)
	for _, m := range used {
		require.True(t, known[m[1]], "compose sets %s, which no flag reads", m[1])
	}
	require.True(t, known["SKYRING_STORAGE_PATH"])
}
