package skyringcli

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
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

// The compose health checks run `skyring probe` on /readyz (the image has
// no curl), and the command exists with the flags they give it.
func TestComposeHealthcheckProbe(t *testing.T) {
	data, err := os.ReadFile("../../compose/docker-compose.yml")
	require.NoError(t, err)
	var doc struct {
		Services map[string]struct {
			Image       string `yaml:"image"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(data, &doc))
	probe := New().cliApp(nil).Command("probe")
	require.NotNil(t, probe, "skyring probe")
	n := 0
	for name, svc := range doc.Services {
		if svc.Image != "skyring:local" {
			continue
		}
		n++
		test := svc.Healthcheck.Test
		require.GreaterOrEqual(t, len(test), 4, "%s: healthcheck %v", name, test)
		require.Equal(t, []string{"CMD", "/usr/local/bin/skyring", "probe"}, test[:3], name)
		require.Equal(t, "http://127.0.0.1:3000/readyz", test[len(test)-1], name)
		for _, a := range test[3 : len(test)-1] {
			if f, ok := strings.CutPrefix(a, "--"); ok {
				require.True(t, hasFlagNamed(probe.Flags, f), "%s: probe has no --%s", name, f)
			}
		}
	}
	require.Equal(t, 5, n, "five skyring services")
}

// The Dockerfile creates the data directory owned by the runtime user
// (distroless nonroot, 65532) before it declares the volume: a named
// volume copies the owner from the image, so the node can write there.
func TestDockerfileDataDirOwned(t *testing.T) {
	data, err := os.ReadFile("../../compose/Dockerfile")
	require.NoError(t, err)
	s := string(data)
	chown := strings.Index(s, "COPY --from=build --chown=65532:65532 /out/data /var/lib/skyring")
	volume := strings.Index(s, "VOLUME /var/lib/skyring")
	require.GreaterOrEqual(t, chown, 0, "the data directory is copied in owned by 65532")
	require.Greater(t, volume, chown, "VOLUME comes after the directory exists")
	require.Contains(t, s, "RUN mkdir -p /out/data")
	require.Contains(t, s, "FROM gcr.io/distroless/static-debian12:nonroot")
	require.Contains(t, s, `"probe", "http://127.0.0.1:3000/readyz"`)
}

func hasFlagNamed(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}
