package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCLIVersionFlag: `skyring version` and `skyring --version` print the
// same line.
func TestCLIVersionFlag(t *testing.T) {
	t.Parallel()
	a, errA, codeA := runCLI(t, 10*time.Second, nil, "version")
	b, errB, codeB := runCLI(t, 10*time.Second, nil, "--version")
	require.Equal(t, 0, codeA, errA)
	require.Equal(t, 0, codeB, errB)
	require.True(t, strings.HasPrefix(a, "skyring version "), "%q", a)
	require.Equal(t, a, b)
}

// TestCLIHygiene: typos in --storage:* flags and durations without a unit
// stop the node with a message that says what to write instead.
func TestCLIHygiene(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		args     []string
		env      []string
		mentions []string
	}{
		{"storage typos", []string{"--storage:paht", "/x", "--storage:nosynk"}, nil,
			[]string{"unknown flags --storage:nosynk (did you mean --storage:nosync?), --storage:paht (did you mean --storage:path?)"}},
		{"storage typo", []string{"--storage:pth=/x"}, nil, []string{"unknown flag --storage:pth (did you mean --storage:path?)"}},
		{"unknown storage option", []string{"--storage:contactPoints=a"}, nil, []string{"--storage:contactPoints", `backend "leveldb" takes --storage:backend, --storage:nosync, --storage:path`}},
		{"duration without unit", []string{"--delivery:timeout", "10"}, nil, []string{`--delivery:timeout "10": use a unit, e.g. 10s`}},
		{"duration without unit, =", []string{"--member:heartbeat=2"}, nil, []string{`--member:heartbeat "2": use a unit`}},
		{"duration in env without unit", nil, []string{"SKYRING_SHUTDOWN_TIMEOUT=15"}, []string{`SKYRING_SHUTDOWN_TIMEOUT="15" (--shutdown:timeout): use a unit`}},
		{"bad log format", []string{"--log:format", "xml"}, nil, []string{`--log:format "xml": want text or json`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"run", "-p", "-1", "--nats:port", "-1", "--channel:port", "-1"}, c.args...)
			if !hasFlag(c.args, "storage:path") && !strings.Contains(strings.Join(c.args, " "), "--storage:p") {
				args = append(args, "--storage:path", t.TempDir())
			}
			_, errOut, code := runCLI(t, 15*time.Second, c.env, args...)
			require.Equal(t, 1, code, "%v: stderr:\n%s", args, errOut)
			require.NotContains(t, errOut, "skyring ready")
			for _, m := range c.mentions {
				require.Contains(t, errOut, m)
			}
		})
	}
}

// TestCLIConfigFile: a --config file (YAML or TOML) sets flags by name; the
// command line and the environment win over it; an unknown key or a
// duration without a unit is refused.
func TestCLIConfigFile(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	for _, format := range []string{"yaml", "toml"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			var conf string
			if format == "yaml" {
				conf = "storage:path: " + data + "\ntimer:max: 5000\nnats:prefix: fromfile\nlog:level: debug\ndelivery:timeout: 3s\ntransport: [http, nats]\n"
			} else {
				conf = `"storage:path" = "` + data + `"` + "\n\"timer:max\" = 5000\n\"nats:prefix\" = \"fromfile\"\n\"log:level\" = \"debug\"\n\"delivery:timeout\" = \"3s\"\ntransport = [\"http\", \"nats\"]\n"
			}
			file := filepath.Join(dir, "skyring."+format)
			require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))

			// The file alone: storage:path, timer:max, log:level from it.
			p := startNodeConfig(t, nodeConfig{NoDefaults: true, Args: []string{"-p", "-1", "--nats:port", "-1", "--channel:port", "-1", "--config", file}})
			require.Equal(t, data, p.Ready["storage"], "storage:path from the file")
			requireError(t, p.do(t, http.MethodPost, "/timer", with(body(s, "/cb/never"), "timeout", 5001)), http.StatusBadRequest)
			require.Contains(t, p.Output(), "level=DEBUG", "log:level from the file")
			p.Stop()

			// The command line and the environment win over the file.
			p = startNodeConfig(t, nodeConfig{NoDefaults: true,
				Args: []string{"-p", "-1", "--nats:port", "-1", "--channel:port", "-1", "--config", file, "--timer:max", "7000"},
				Env:  []string{"SKYRING_LOG_LEVEL=info"}})
			p.createTimer(t, with(body(s, "/cb/never"), "timeout", 6000))
			requireError(t, p.do(t, http.MethodPost, "/timer", with(body(s, "/cb/never"), "timeout", 7001)), http.StatusBadRequest)
			require.NotContains(t, p.Output(), "level=DEBUG", "SKYRING_LOG_LEVEL wins over the file")
			p.Stop()
		})
	}
	for _, c := range []struct{ name, file, content, mention string }{
		{"unknown storage key", "c.yaml", "storage:paht: /x\n", "unknown flag --storage:paht (did you mean --storage:path?)"},
		{"unknown key", "c.yml", "colour: blue\n", `unknown key "colour"`},
		{"typo of a flag", "c.yaml", "timer:mx: 5\n", `unknown key "timer:mx" (did you mean "timer:max"?)`},
		{"duration without unit", "c.yaml", "delivery:timeout: 10\n", `delivery:timeout: "10": use a unit`},
		{"not yaml", "c.yaml", "a: [\n", "config file"},
		{"unknown extension", "c.ini", "x=1\n", "want a .yaml, .yml or .toml file"},
		{"missing file", "", "", "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "absent.yaml")
			if c.file != "" {
				file = filepath.Join(t.TempDir(), c.file)
				require.NoError(t, os.WriteFile(file, []byte(c.content), 0o600))
			}
			_, errOut, code := runCLI(t, 15*time.Second, nil, "run", "-p", "-1", "--nats:port", "-1", "--channel:port", "-1",
				"--storage:path", t.TempDir(), "--config", file)
			require.Equal(t, 1, code, "stderr:\n%s", errOut)
			require.Contains(t, errOut, c.mention)
		})
	}
}

// TestCLIJSONLogs: --log:format json writes one JSON object per line, and
// a delivery that finally failed is logged at warn level with its timer id
// (a retried attempt is not a warning).
func TestCLIJSONLogs(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t, "--log:format", "json", "--delivery:min-backoff", "10ms", "--delivery:max-backoff", "20ms")
	b := body(s, "/status/503/json-logs")
	b["timeout"] = 10
	b["callback"].(map[string]any)["retry"] = map[string]any{"attempts": 2}
	id, _ := p.createTimer(t, b)
	s.waitFor(t, deliverWait, "two attempts", func() bool { return len(s.byPath["/status/503/json-logs"]) >= 2 })
	// The outcome is stored, then logged: wait for the warn line.
	require.True(t, pollUntil(deliverWait, 20*time.Millisecond, func() bool {
		return strings.Contains(p.Output(), `"msg":"delivery failed"`)
	}), "no delivery failed line")
	p.requireState(t, id, "failed", "out of attempts")
	var warns, retries int
	for _, line := range strings.Split(p.Output(), "\n") {
		_, line, ok := strings.Cut(line, "] ")
		if !ok || line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not a JSON line: %q", line)
		if rec["timer_id"] != id {
			continue
		}
		switch rec["msg"] {
		case "delivery failed":
			require.Equal(t, "WARN", rec["level"])
			warns++
		case "delivery attempt failed; retrying":
			require.Equal(t, "INFO", rec["level"])
			retries++
		}
	}
	require.Equal(t, 1, warns, "one warn line for the final failure")
	require.Equal(t, 1, retries, "one info line for the retried attempt")
}

// TestCLIProbe: `skyring probe <url>` exits 0 on a 2xx answer, 1 otherwise.
func TestCLIProbe(t *testing.T) {
	t.Parallel()
	p := startNode(t)
	_, errOut, code := runCLI(t, 15*time.Second, nil, "probe", p.URL+"/ping")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = runCLI(t, 15*time.Second, nil, "probe", p.URL+"/timer/nope")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "404")
	require.Contains(t, errOut, "Timer not found")
	_, errOut, code = runCLI(t, 15*time.Second, nil, "probe", "--timeout", "2s", closedPortURL(t))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "probe failed")
}
