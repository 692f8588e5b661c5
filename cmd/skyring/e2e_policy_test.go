package main_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCallbackPolicy runs the real binary: a callback to the cloud
// metadata address is a 400 at create by default; with --callback:deny
// 127.0.0.0/8, a literal loopback callback is a 400 and a name that
// resolves to loopback (localhost) is accepted, never dialled, and fails
// for good with the policy as its reason.
func TestCallbackPolicy(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t, "--callback:deny", "127.0.0.0/8", "--callback:deny", "::1/128")
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.>")
	meta := map[string]any{"timeout": 1000, "callback": map[string]any{"transport": "http", "method": "get", "uri": "http://169.254.169.254/latest/meta-data/"}}
	r := p.do(t, http.MethodPost, "/timer", meta)
	requireError(t, r, http.StatusBadRequest, "the metadata address")
	require.Contains(t, r.Header.Get("x-skyring-reason"), "callback policy")
	requireError(t, p.do(t, http.MethodPost, "/timer", body(s, "/cb/denied")), http.StatusBadRequest, "a literal denied address")

	byName := map[string]any{"timeout": 50, "callback": map[string]any{"transport": "http", "method": "post", "uri": strings.Replace(s.URL("/cb/by-name"), "127.0.0.1", "localhost", 1)}}
	id, _ := p.createTimer(t, byName)
	fail := ev.wait(t, "skyring.events.fail", id, eventWait)
	require.Contains(t, fail.Fields["error"], "callback policy")
	require.EqualValues(t, 1, fail.Fields["attempt"], "final at once: not retried")
	require.Zero(t, s.Count("/cb/by-name"), "never dialled")
	info := p.requireState(t, id, "failed", "a denied destination")
	require.Contains(t, info.LastError, "denied")
}
