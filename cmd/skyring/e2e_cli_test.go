package main_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCLIVersion: `skyring version` prints the version the callbacks'
// User-Agent carries.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	out, errOut, code := runCLI(t, 10*time.Second, nil, "version")
	require.Equal(t, 0, code, "skyring version: stderr %q", errOut)
	fields := strings.Fields(out)
	require.NotEmpty(t, fields, "skyring version printed nothing")
	version := fields[len(fields)-1]
	t.Logf("version output %q", out)

	s := newSink(t)
	p := startNode(t)
	path := s.Path("ua")
	p.createTimer(t, with(body(s, path), "timeout", 20))
	a := s.waitPath(t, path, deliverWait)
	require.Equal(t, "skyring/"+version, a.Header.Get("User-Agent"), "User-Agent is skyring/<version>")
}

// TestCLIStorageInUse: a second process on the same data directory fails at
// once with a message saying it is in use, and the first keeps running.
func TestCLIStorageInUse(t *testing.T) {
	t.Parallel()
	p := startNode(t)
	// It exits on its own, with a message about the directory in use: a
	// process that waited for the lock would be killed at the bound (a
	// minute, far beyond a start even on a slow machine) and say nothing.
	start := time.Now()
	_, errOut, code := runCLI(t, time.Minute, nil,
		"run", "-p", "-1", "--nats:port", "-1", "--channel:port", "-1", "--storage:path", p.Dir)
	took := time.Since(start)
	require.NotEqual(t, -1, code, "second process on the same data dir did not exit within a minute; stderr:\n%s", errOut)
	require.NotEqual(t, 0, code, "second process on the same data dir exited 0; stderr:\n%s", errOut)
	require.Contains(t, errOut, "in use", "stderr of the second process")
	t.Logf("second process: exit %d after %v: %s", code, took, strings.TrimSpace(errOut))
	p.requireUp(t)
	p.Stop()
}

// TestCLIBadInvocations: unknown flags, invalid values and stray arguments
// fail with a non-zero exit and a message, without starting a node.
func TestCLIBadInvocations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		mention string // the message names this (case-insensitive), "" = anything
	}{
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"port not a number", []string{"-p", "abc"}, "abc"},
		{"port out of range", []string{"-p", "70000"}, "70000"},
		{"port below -1", []string{"-p", "-2"}, "-1: a free one"},
		{"channel port below -1", []string{"--channel:port", "-7"}, "channel:port -7"},
		{"NATS port out of range", []string{"--nats:port", "65536"}, "nats:port 65536"},
		{"unknown backend", []string{"--storage:backend", "nosuchdb"}, "nosuchdb"},
		{"unknown log level", []string{"--log:level", "loud"}, "loud"},
		{"unknown transport", []string{"-t", "carrier-pigeon"}, "carrier-pigeon"},
		{"unknown transport lists the known", []string{"-t", "http", "-t", "carrier-pigeon"}, "known: http, nats"},
		{"bad delivery timeout", []string{"--delivery:timeout", "soon"}, "soon"},
		{"timer max zero", []string{"--timer:max", "0"}, "timer:max"},
		{"stray argument", []string{"extra"}, "extra"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Safe settings first (a binary that wrongly starts binds
			// nothing fixed), then the case's own arguments.
			args := []string{"run", "--nats:port", "-1", "--channel:port", "-1", "--storage:path", t.TempDir()}
			if !hasFlag(c.args, "p") {
				args = append(args, "-p", "-1")
			}
			args = append(args, c.args...)
			_, errOut, code := runCLI(t, 15*time.Second, nil, args...)
			require.NotEqual(t, -1, code, "%v: still running after 15s (started a node?); stderr:\n%s", args, errOut)
			require.NotEqual(t, 0, code, "%v: exit 0; stderr:\n%s", args, errOut)
			require.NotEmpty(t, strings.TrimSpace(errOut), "%v: no message", args)
			require.NotContains(t, errOut, "skyring ready", "%v", args)
			require.NotContains(t, errOut, "goroutine ", "%v: a panic, not a clear message", args)
			if c.mention != "" {
				require.Contains(t, strings.ToLower(errOut), strings.ToLower(c.mention), "%v: the message names the culprit", args)
			}
		})
	}
	t.Run("unknown command", func(t *testing.T) {
		t.Parallel()
		out, errOut, code := runCLI(t, 10*time.Second, nil, "frobnicate")
		require.NotEqual(t, 0, code, "skyring frobnicate exits 0; stdout %q stderr %q", out, errOut)
	})
}

// TestCLIEnv: every setting can come from SKYRING_<NAME>.
func TestCLIEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSink(t)
	p := startNodeConfig(t, nodeConfig{NoDefaults: true, Env: []string{
		"SKYRING_PORT=0",
		"SKYRING_NATS_PORT=0",
		"SKYRING_CHANNEL_PORT=0",
		"SKYRING_STORAGE_PATH=" + dir,
		"SKYRING_NATS_PREFIX=envpfx",
		"SKYRING_TIMER_MAX=5000",
		"SKYRING_LOG_LEVEL=debug",
	}})
	require.Equal(t, dir, p.Ready["storage"], "ready line storage=")
	ev := subscribeEvents(t, p.NATSURL, "envpfx.events.>")
	requireError(t, p.do(t, http.MethodPost, "/timer", with(body(s, "/cb/never"), "timeout", 5001)), http.StatusBadRequest, "SKYRING_TIMER_MAX")
	path := s.Path("env")
	id, _ := p.createTimer(t, with(body(s, path), "timeout", 50))
	ev.wait(t, "envpfx.events.create", id, eventWait)
	s.waitPath(t, path, deliverWait)
	require.Contains(t, p.Output(), "level=DEBUG", "SKYRING_LOG_LEVEL=debug")
	p.Stop()
}

// TestCLIBackends: each backend name and alias starts a working node.
func TestCLIBackends(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	for _, backend := range []string{"leveldb", "leveldown", "goleveldb", "memory", "memdown"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			p := startNode(t, "--storage:backend", backend)
			path := s.Path(backend)
			p.createTimer(t, with(body(s, path), "timeout", 20))
			s.waitPath(t, path, deliverWait)
			p.Stop()
		})
	}
	t.Run("nosync", func(t *testing.T) {
		t.Parallel()
		p := startNode(t, "--storage:nosync")
		id, _ := p.createTimer(t, body(s, "/cb/never"))
		p.Stop()
		p.Restart()
		p.getTimer(t, id)
		p.Stop()
	})
}

// TestCLIReadyLine: the ready line carries http, nats, storage and node.
func TestCLIReadyLine(t *testing.T) {
	t.Parallel()
	p := startNode(t)
	for _, k := range []string{"http", "nats", "storage", "node"} {
		require.NotEmpty(t, p.Ready[k], "ready line %s=: %v", k, p.Ready)
	}
	require.True(t, strings.HasPrefix(p.NATSURL, "nats://"), "nats=%q", p.NATSURL)
	require.Equal(t, p.Dir, p.Ready["storage"])
	require.Equal(t, 1, strings.Count(p.Output(), `msg="skyring ready"`), "exactly one ready line")
	p.requireUp(t)
	p.Stop()
}
