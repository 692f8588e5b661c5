package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cliLimit bounds one run of an API command of the binary.
const cliLimit = 30 * time.Second

// cliOK runs the binary with args and requires exit 0; it returns stdout.
func cliOK(t testing.TB, env []string, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, cliLimit, env, args...)
	require.Equalf(t, 0, code, "skyring %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	return out
}

// cliFails runs the binary with args, requires a non-zero exit, and returns
// stderr.
func cliFails(t testing.TB, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := runCLI(t, cliLimit, env, args...)
	require.NotEqualf(t, 0, code, "skyring %s exited 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), out, errOut)
	require.NotEqualf(t, -1, code, "skyring %s had to be killed\nstderr: %s", strings.Join(args, " "), errOut)
	return out, errOut
}

// cliInfo is `skyring timer get <id> -o json` decoded.
func cliInfo(t testing.TB, url, id string) timerInfo {
	t.Helper()
	var info timerInfo
	out := cliOK(t, nil, "timer", "get", "--url", url, "-o", "json", id)
	require.NoErrorf(t, json.Unmarshal([]byte(out), &info), "timer get -o json: %q", out)
	return info
}

// cliPage is `skyring timer ls -o json` decoded: exactly the API's page.
type cliPage struct {
	Timers []timerInfo `json:"timers"`
	Cursor string      `json:"cursor"`
}

func cliList(t testing.TB, args ...string) cliPage {
	t.Helper()
	out := cliOK(t, nil, append([]string{"timer", "ls", "-o", "json"}, args...)...)
	var page cliPage
	require.NoErrorf(t, json.Unmarshal([]byte(out), &page), "timer ls -o json: %q", out)
	require.NotNilf(t, page.Timers, "timer ls -o json has no timers array: %q", out)
	return page
}

func pageIDs(p cliPage) []string {
	ids := make([]string, 0, len(p.Timers))
	for _, tm := range p.Timers {
		ids = append(ids, tm.ID)
	}
	return ids
}

// TestCLITimerDeadLetter: a timer created with `skyring timer create` whose
// receiver answers 400 ends failed; `skyring timer ls --state failed -o
// json` lists it; `skyring timer retry` delivers it once the receiver is
// fixed; a second retry fails with the server's reason and a non-zero exit.
func TestCLITimerDeadLetter(t *testing.T) {
	t.Parallel()
	var fixed atomic.Bool
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fixed.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(rcv.Close)
	p := startNode(t)
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.>")

	id := strings.TrimSpace(cliOK(t, nil, "timer", "create", "--url", p.URL,
		"--timeout", "50ms", "--data", "dead letter", "--callback", rcv.URL+"/dl"))
	require.NotEmpty(t, id, "timer create printed no id")
	ev.wait(t, "skyring.events.fail", id, eventWait)
	// A pending one, not failed, that the failed listing must leave out.
	pending := strings.TrimSpace(cliOK(t, nil, "timer", "create", "--url", p.URL,
		"--timeout", "15m", "--callback", rcv.URL+"/later"))

	page := cliList(t, "--url", p.URL, "--state", "failed")
	require.Equal(t, []string{id}, pageIDs(page), "the dead letter, and only it")
	tm := page.Timers[0]
	require.Equal(t, "failed", tm.State)
	require.Equal(t, 400, tm.LastStatus)
	require.Equal(t, 1, tm.Attempts)
	require.JSONEq(t, `"dead letter"`, string(tm.Data))
	require.Equal(t, rcv.URL+"/dl", tm.Callback.URI)
	require.Equal(t, "post", tm.Callback.Method)

	// Table: headers for people, the dead letter's row.
	table := cliOK(t, nil, "timer", "ls", "--url", p.URL, "--state", "failed")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 2, "a header and one row: %q", table)
	require.Equal(t, []string{"ID", "STATE", "DUE", "ATTEMPTS", "CALLBACK", "NODE", "LAST", "ERROR"}, strings.Fields(lines[0]))
	require.Equal(t, []string{id, "failed"}, strings.Fields(lines[1])[:2])

	// --all follows the cursors, a page of one at a time.
	all := cliList(t, "--url", p.URL, "--limit", "1", "--all")
	require.ElementsMatch(t, []string{id, pending}, pageIDs(all))
	require.Empty(t, all.Cursor)
	one := cliList(t, "--url", p.URL, "--limit", "1")
	require.Len(t, one.Timers, 1)
	require.NotEmpty(t, one.Cursor, "a page of one of two has a cursor")
	rest := cliList(t, "--url", p.URL, "--limit", "1", "--cursor", one.Cursor)
	require.ElementsMatch(t, []string{id, pending}, append(pageIDs(one), pageIDs(rest)...))

	fixed.Store(true)
	require.Equal(t, "retried "+id, strings.TrimSpace(cliOK(t, nil, "timer", "retry", "--url", p.URL, id)))
	ev.wait(t, "skyring.events.success", id, eventWait)
	require.Eventually(t, func() bool { return cliInfo(t, p.URL, id).State == "delivered" }, eventWait, 50*time.Millisecond)

	_, errOut := cliFails(t, nil, "timer", "retry", "--url", p.URL, id)
	require.Contains(t, errOut, "has not failed", "the server's reason")
	require.Empty(t, cliList(t, "--url", p.URL, "--state", "failed").Timers, "nothing failed any more")
}

// TestCLITimerCreateGetCancel: create with an id, JSON data and an http
// callback; get shows every field (JSON and table); cancel removes it, a
// missing id among those given is reported and fails the command; server
// errors come back with their reason; the same over NATS.
func TestCLITimerCreateGetCancel(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)
	// args is `timer <sub> --url <node> rest...`: flags go before the ids.
	args := func(sub string, rest ...string) []string {
		return append([]string{"timer", sub, "--url", p.URL}, rest...)
	}

	out := cliOK(t, nil, args("create", "--id", "cli-1", "--timeout", "900000",
		"--json-data", "--data", `{"k":"v"}`, "--callback", s.URL("/cb"), "--method", "PUT")...)
	require.Equal(t, "cli-1", strings.TrimSpace(out))
	info := cliInfo(t, p.URL, "cli-1")
	require.Equal(t, "pending", info.State)
	require.EqualValues(t, 900000, info.Timeout, "--timeout in ms")
	require.JSONEq(t, `{"k":"v"}`, string(info.Data))
	require.Equal(t, "http", info.Callback.Transport)
	require.Equal(t, "put", info.Callback.Method)
	require.Equal(t, s.URL("/cb"), info.Callback.URI)
	require.Equal(t, p.Node, info.Node)
	require.Equal(t, p.getTimer(t, "cli-1"), info, "the CLI shows what GET /timer/:id answers")

	table := cliOK(t, nil, args("get", "cli-1")...)
	for _, want := range []string{"ID:", "cli-1", "State:", "pending", "Due:", "Callback:", "http put " + s.URL("/cb"), "Data:", `{"k":"v"}`, "Attempts:", "Last error:"} {
		require.Contains(t, table, want, "timer get table")
	}

	// Server errors: the reason, a non-zero exit.
	_, errOut := cliFails(t, nil, args("create", "--id", "cli-1", "--timeout", "1m", "--callback", s.URL("/cb"))...)
	require.Contains(t, errOut, "already exists")
	_, errOut = cliFails(t, nil, args("create", "--at", "2999-01-01T00:00:00Z", "--callback", s.URL("/cb"))...)
	r := p.do(t, http.MethodPost, "/timer", map[string]any{"at": "2999-01-01T00:00:00Z", "callback": map[string]any{"transport": "http", "method": "post", "uri": s.URL("/cb")}})
	requireError(t, r, http.StatusBadRequest, "an at beyond --timer:max")
	require.Contains(t, errOut, r.Reason(), "the server's x-skyring-reason")
	_, errOut = cliFails(t, nil, args("create", "--timeout", "10", "--callback", "ftp://x")...)
	require.Contains(t, errOut, "nats:<subject>")
	_, errOut = cliFails(t, nil, args("ls", "--due-after", "soon")...)
	require.Contains(t, errOut, "--due-after \"soon\"")
	_, errOut = cliFails(t, nil, args("get", "no-such")...)
	require.Contains(t, errOut, "not found")

	// A duration timeout and string data from a file.
	f := t.TempDir() + "/data.txt"
	require.NoError(t, os.WriteFile(f, []byte("from a file"), 0o600))
	id2 := strings.TrimSpace(cliOK(t, nil, args("create", "--timeout", "15m", "--data", "@"+f, "--callback", s.URL("/cb2"))...))
	info2 := cliInfo(t, p.URL, id2)
	require.EqualValues(t, 15*60*1000, info2.Timeout)
	require.JSONEq(t, `"from a file"`, string(info2.Data))
	require.Equal(t, "post", info2.Callback.Method, "post by default")

	// cancel: one missing among them fails the command, the others are
	// cancelled.
	out, errOut = cliFails(t, nil, args("cancel", "cli-1", "no-such", id2)...)
	require.Contains(t, out, "cancelled cli-1")
	require.Contains(t, out, "cancelled "+id2)
	require.Contains(t, errOut, "no-such")
	require.Contains(t, errOut, "not found")
	require.Equal(t, "cancelled", cliInfo(t, p.URL, "cli-1").State)
	require.Equal(t, "cancelled", cliInfo(t, p.URL, id2).State)
	_, errOut = cliFails(t, nil, args("cancel")...)
	require.Contains(t, errOut, "give one or more timer ids")
	_, errOut = cliFails(t, nil, "timer", "get", "cli-1", "--url", p.URL)
	require.Contains(t, errOut, "flags go before the ids", "urfave/cli stops at the first id: say so")

	// Over NATS: create with a nats callback, get, ls, cancel.
	nurl := []string{"--nats", p.NATSURL}
	id3 := strings.TrimSpace(cliOK(t, nil, append([]string{"timer", "create", "--timeout", "15m", "--callback", "nats:jobs.cli"}, nurl...)...))
	out = cliOK(t, nil, "timer", "get", "-o", "json", "--nats", p.NATSURL, id3)
	var info3 timerInfo
	require.NoError(t, json.Unmarshal([]byte(out), &info3))
	require.Equal(t, "nats", info3.Callback.Transport)
	require.Equal(t, "publish", info3.Callback.Method)
	require.Equal(t, "jobs.cli", info3.Callback.URI)
	page := cliList(t, append([]string{"--state", "pending"}, nurl...)...)
	require.Equal(t, []string{id3}, pageIDs(page))
	out = cliOK(t, nil, "timer", "cancel", "-o", "json", "--nats", p.NATSURL, id3)
	require.JSONEq(t, `{"cancelled":["`+id3+`"]}`, out)
	require.Equal(t, "cancelled", cliInfo(t, p.URL, id3).State)
	s.barrier(t, p, 1)
	require.Zero(t, s.Count("/cb")+s.Count("/cb2"), "cancelled timers are not delivered")
}

// TestCLICluster: `skyring cluster` shows the members with their timer
// counts and the ring version; -o json is GET /cluster; over NATS it says
// there is no such subject.
func TestCLICluster(t *testing.T) {
	t.Parallel()
	p := startNode(t)
	table := cliOK(t, nil, "cluster", "--url", p.URL)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 3, "header, one member, summary: %q", table)
	require.Equal(t, []string{"NODE", "HTTP", "NATS", "TIMERS", "STARTED"}, strings.Fields(lines[0]))
	require.Equal(t, []string{p.Node, "(this)"}, strings.Fields(lines[1])[:2])
	require.Contains(t, lines[2], "ring version")

	var cl struct {
		Node struct {
			ID string `json:"id"`
		} `json:"node"`
		Members []struct {
			ID     string `json:"id"`
			Timers int    `json:"timers"`
		} `json:"members"`
		RingVersion uint64 `json:"ring_version"`
	}
	out := cliOK(t, nil, "cluster", "--url", p.URL, "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &cl), "%q", out)
	require.Equal(t, p.Node, cl.Node.ID)
	require.Len(t, cl.Members, 1)
	require.NotZero(t, cl.RingVersion)

	_, errOut := cliFails(t, nil, "cluster", "--nats", p.NATSURL)
	require.Contains(t, errOut, "NATS API has no cluster")
	_, errOut = cliFails(t, nil, "cluster", "--url", p.URL, "-o", "yaml")
	require.Contains(t, errOut, "yaml")
}

// TestCLITimerToken: against a node run with --http:token, the commands
// send --token (or SKYRING_TOKEN) as the bearer token over HTTP and the
// NATS token over NATS; without it they fail with the server's reason.
func TestCLITimerToken(t *testing.T) {
	t.Parallel()
	const token = "cli-token-0123456789abcdef"
	p := startNode(t, "--http:token", token)
	_, errOut := cliFails(t, nil, "timer", "ls", "--url", p.URL)
	require.Contains(t, strings.ToLower(errOut), "401")
	env := []string{"SKYRING_TOKEN=" + token}
	id := strings.TrimSpace(cliOK(t, env, "timer", "create", "--url", p.URL, "--timeout", "15m", "--callback", "http://127.0.0.1:9/x"))
	require.Equal(t, "pending", strings.Fields(strings.Split(cliOK(t, env, "timer", "ls", "--url", p.URL), "\n")[1])[1])
	cliOK(t, nil, "timer", "cancel", "--nats", p.NATSURL, "--token", token, id)
	cliFails(t, nil, "timer", "get", "--nats", p.NATSURL, id)
}

// TestCLIBenchCleanup: `skyring bench --cleanup` cancels what it created,
// over HTTP and over NATS, and says so instead of warning that timers
// remain: the node holds no pending timer afterwards.
func TestCLIBenchCleanup(t *testing.T) {
	t.Parallel()
	p := startNode(t)
	pendingCount := func() int {
		return len(cliList(t, "--url", p.URL, "--state", "pending", "--all", "--limit", "1000").Timers)
	}
	for _, via := range [][]string{{"--url", p.URL}, {"--nats", p.NATSURL}} {
		out := cliOK(t, nil, append([]string{"bench", "-n", "300", "-c", "4", "--cleanup"}, via...)...)
		require.Contains(t, out, "cleaned up 300", "%s", via[0])
		require.NotContains(t, out, "remain pending", "%s", via[0])
		require.Zero(t, pendingCount(), "pending after bench --cleanup %s", via[0])
	}
	// Without --cleanup they stay, and the bench says so.
	out := cliOK(t, nil, "bench", "-n", "20", "-c", "2", "--url", p.URL)
	require.Contains(t, out, "20 timers remain pending")
	require.Equal(t, 20, pendingCount())
}
