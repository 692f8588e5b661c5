// End-to-end tests of the skyring binary.
//
// TestMain builds the real binary once (with -race when the tests are built
// with -race) and every test drives it as a user would: it starts `skyring
// run` as a child process on random ports and a t.TempDir() data directory,
// talks to it over HTTP and NATS, and receives the callbacks on a local HTTP
// sink. Nothing here imports the node's packages.
//
// Synchronisation is by waiting for what happens (the ready log line, an
// arrival at the sink, an event on NATS, a process exit), each with a
// deadline; never by sleeping. Where "nothing more arrives" has to be shown
// (exactly once, a cancelled timer), a barrier timer due later is used: when
// it arrives, the earlier timer's callback has had its chance.
//
// A loaded machine may make a test slower, never fail it: nothing assumes
// how fast creates or deliveries go. Waits on a load are bounded by its
// progress, not a rate; a scenario that must do something before its own
// timers are due checks afterwards whether it did, and on a machine too
// slow for its lead runs again with a longer one (withLead); a 504 from a
// relay is answered as the API tells clients to (retry with the same id).
package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// skyringBin is the binary TestMain built.
var skyringBin string

const (
	readyTimeout = 20 * time.Second // start to "skyring ready"
	stopTimeout  = 20 * time.Second // SIGTERM to exit
	// deliverWait bounds how long a test waits for a callback past its due
	// time. Generous: it only matters when something is broken.
	deliverWait = 15 * time.Second
	// longTimeout is a timeout (ms) that never fires during a test.
	longTimeout = 600000
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// SKYRING_E2E_BIN runs the tests against a binary built elsewhere.
	if bin := os.Getenv("SKYRING_E2E_BIN"); bin != "" {
		skyringBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "skyring-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	skyringBin = filepath.Join(dir, "skyring")
	args := []string{"build", "-o", skyringBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	cmd := exec.Command("go", args...)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// leadAttempts bounds how many times withLead tries a scenario.
const leadAttempts = 4

// withLead runs a scenario whose premise is a race against its own timers:
// everything must be created (and the node killed, or the shares read)
// before the first of them is due. try runs it with timers due lead ahead
// and returns 0 when the premise held (the scenario ran and judged what it
// checks through t), or, when the machine was too slow for that lead, the
// longer lead it measured it needs: then nothing was judged, try has put
// away what it started, and it runs again with that lead. A slow machine
// makes the test slower, not failing; only one that keeps getting slower
// through leadAttempts tries fails it.
func withLead(t *testing.T, lead time.Duration, try func(lead time.Duration) (retry time.Duration)) {
	t.Helper()
	for attempt := 1; attempt <= leadAttempts; attempt++ {
		next := try(lead)
		if next == 0 || t.Failed() {
			return
		}
		next = max(next, lead+time.Second)
		t.Logf("attempt %d (lead %v): the machine was too slow; trying again with a lead of %v", attempt, lead, next)
		lead = next
	}
	t.Fatalf("the machine stayed too slow for the scenario's lead through %d attempts (last lead %v)", leadAttempts, lead)
}

// slowAnswer reports whether r, a wrong answer to a request about a timer
// due at at (Unix ms), came only because the machine was slow: a 404 (it
// fired) or 400 ("at" in the past) once the due time has passed, or a 504
// (relayed to an owner that did not answer in time; the request may have
// been carried out, so the round that sent it is spent either way).
func slowAnswer(r response, at int64) bool {
	if r.Status == http.StatusGatewayTimeout {
		return true
	}
	return time.Now().UnixMilli() >= at && (r.Status == http.StatusNotFound || r.Status == http.StatusBadRequest)
}

// ---------------------------------------------------------------------------
// Processes

// nodeConfig says how to start a node. Defaults (random ports, a fresh data
// directory) are added for each setting the args do not name, unless
// NoDefaults is set.
type nodeConfig struct {
	Args       []string
	Env        []string // extra KEY=VALUE, on top of this process' environment
	NoDefaults bool
}

// proc is one skyring node process, across restarts on the same data dir.
type proc struct {
	t    testing.TB
	args []string
	env  []string
	Dir  string // --storage:path, "" when the config gives none

	log *syncBuffer // stdout+stderr of every life

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	life    int

	// From the ready line of the current life.
	Ready   map[string]string
	URL     string // http://host:port
	NATSURL string // nats://host:port
	Node    string
}

// startNode starts `skyring run` with args on top of the defaults
// (-p -1 --nats:port -1 --channel:port -1 --storage:path <t.TempDir()>), waits
// for it to be ready and kills it when the test ends.
func startNode(t testing.TB, args ...string) *proc {
	t.Helper()
	return startNodeConfig(t, nodeConfig{Args: args})
}

func startNodeConfig(t testing.TB, c nodeConfig) *proc {
	t.Helper()
	p := newProc(t, c)
	p.start()
	return p
}

// newProc prepares a node without starting it.
func newProc(t testing.TB, c nodeConfig) *proc {
	t.Helper()
	args := append([]string{"run"}, c.Args...)
	p := &proc{t: t, env: c.Env, log: &syncBuffer{}}
	if !c.NoDefaults {
		if !hasFlag(c.Args, "p", "port") {
			args = append(args, "-p", "-1")
		}
		if !hasFlag(c.Args, "nats:port") && !hasFlag(c.Args, "nats:hosts") {
			args = append(args, "--nats:port", "-1")
		}
		if !hasFlag(c.Args, "channel:port") {
			args = append(args, "--channel:port", "-1")
		}
		if !hasFlag(c.Args, "storage:path") && !hasEnv(c.Env, "SKYRING_STORAGE_PATH") {
			p.Dir = t.TempDir()
			args = append(args, "--storage:path", p.Dir)
		}
	}
	if v, ok := flagValue(args, "storage:path"); ok {
		p.Dir = v
	}
	p.args = args
	t.Cleanup(func() {
		p.Kill()
		if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector reported a data race in skyring")
		}
		if t.Failed() {
			t.Logf("skyring %s output:\n%s", strings.Join(p.args, " "), p.log.String())
		}
	})
	return p
}

// start starts a new life of p from the harness binary and waits until it is
// ready.
func (p *proc) start() { p.startBin(skyringBin) }

// startBin starts a new life of p from bin and waits until it is ready.
func (p *proc) startBin(bin string) {
	p.t.Helper()
	p.launch(bin)()
}

// launch starts a new life of p from bin and returns at once; the func it
// returns waits until that life is ready (or fails the test), and must be
// called on the test goroutine. Nodes that cannot be ready alone (an R3
// JetStream store waits for a quorum of servers) are launched together and
// then waited for.
func (p *proc) launch(bin string) (wait func()) {
	p.t.Helper()
	p.mu.Lock()
	if p.cmd != nil && !p.isExited() {
		p.mu.Unlock()
		p.t.Fatalf("skyring: start while still running")
	}
	p.life++
	life := p.life
	readyc := make(chan map[string]string, 1)
	cmd := exec.Command(bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = &lineWriter{prefix: fmt.Sprintf("[%d out] ", life), dst: p.log}
	cmd.Stderr = &lineWriter{prefix: fmt.Sprintf("[%d err] ", life), dst: p.log, onLine: func(line string) {
		if attrs, ok := parseReady(line); ok {
			select {
			case readyc <- attrs:
			default:
			}
		}
	}}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("skyring: start: %v", err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.waitErr = cmd, exited, nil
	p.Ready, p.URL, p.NATSURL, p.Node = nil, "", "", ""
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	launched := time.Now()
	return func() {
		p.t.Helper()
		p.awaitReady(readyc, exited, launched)
	}
}

// awaitReady waits for the ready line of the life launched at launched.
func (p *proc) awaitReady(readyc chan map[string]string, exited chan struct{}, launched time.Time) {
	p.t.Helper()
	deadline := time.NewTimer(time.Until(launched.Add(readyTimeout)))
	defer deadline.Stop()
	select {
	case attrs := <-readyc:
		p.mu.Lock()
		p.Ready = attrs
		p.Node = attrs["node"]
		if h := attrs["http"]; h != "" {
			p.URL = "http://" + dialable(strings.TrimPrefix(h, "http://"))
		}
		p.NATSURL = attrs["nats"]
		p.mu.Unlock()
		if p.URL == "" || p.Node == "" {
			p.t.Fatalf("skyring ready line without http= or node=: %v", attrs)
		}
	case <-exited:
		p.t.Fatalf("skyring exited before it was ready (%v); output:\n%s", p.exitErr(), p.log.String())
	case <-deadline.C:
		p.Kill()
		p.t.Fatalf("skyring not ready within %v; output:\n%s", readyTimeout, p.log.String())
	}
}

// dialable turns a listen address (":3000", "[::]:3000", "0.0.0.0:3000")
// into one to dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (p *proc) isExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Kill sends SIGKILL and waits for the process to be gone. It does nothing
// when the process is not running.
func (p *proc) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Stop sends SIGTERM, waits for the exit and requires exit code 0.
func (p *proc) Stop() { p.t.Helper(); p.StopWith(syscall.SIGTERM) }

// StopWith sends sig, waits for the exit and requires exit code 0.
func (p *proc) StopWith(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	require.NotNil(p.t, cmd, "stop before start")
	start := time.Now()
	require.NoError(p.t, cmd.Process.Signal(sig))
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		p.Kill()
		p.t.Fatalf("skyring did not exit within %v of %v", stopTimeout, sig)
	}
	code := exitCode(p.exitErr())
	require.Equalf(p.t, 0, code, "exit code after %v (%v, took %v)", sig, p.exitErr(), time.Since(start))
}

// Restart starts p again on the same data directory (after Stop or Kill).
func (p *proc) Restart() { p.t.Helper(); p.start() }

// Running reports whether the current life has not exited.
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.isExited()
}

// Output is everything the process wrote so far, all lives.
func (p *proc) Output() string { return p.log.String() }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -2
}

// runCLI runs the binary to completion (bounded by limit) and returns what
// it wrote and its exit code; -1 means it had to be killed.
func runCLI(t testing.TB, limit time.Duration, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, skyringBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), errb.String(), -1
	}
	if err != nil && exitCode(err) == -2 {
		t.Fatalf("running skyring %v: %v", args, err)
	}
	return out.String(), errb.String(), exitCode(err)
}

// hasFlag reports whether args set one of the named flags (-x, --x, -x=v,
// --x=v).
func hasFlag(args []string, names ...string) bool {
	_, ok := flagValue(args, names...)
	return ok
}

func flagValue(args []string, names ...string) (string, bool) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimLeft(a, "-")
		for _, n := range names {
			if a == n {
				if i+1 < len(args) {
					return args[i+1], true
				}
				return "", true
			}
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// parseReady parses a log/slog text line and reports its attributes when its
// msg is "skyring ready".
func parseReady(line string) (map[string]string, bool) {
	if !strings.Contains(line, "skyring ready") {
		return nil, false
	}
	if strings.HasPrefix(line, "{") { // --log:format json
		var obj map[string]any
		if json.Unmarshal([]byte(line), &obj) != nil || obj["msg"] != "skyring ready" {
			return nil, false
		}
		attrs := make(map[string]string, len(obj))
		for k, v := range obj {
			attrs[k] = fmt.Sprint(v)
		}
		return attrs, true
	}
	attrs := parseLogfmt(line)
	if attrs["msg"] != "skyring ready" {
		return nil, false
	}
	return attrs, true
}

// parseLogfmt parses key=value pairs as log/slog's TextHandler writes them
// (values with spaces or quotes are Go-quoted).
func parseLogfmt(line string) map[string]string {
	out := map[string]string{}
	s := line
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexByte(s, ' ')
		if eq < 0 || (sp >= 0 && sp < eq) { // a bare word
			if sp < 0 {
				return out
			}
			s = s[sp:]
			continue
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return out
			}
			quoted := s[:end+1]
			s = s[end+1:]
			if v, err := strconv.Unquote(quoted); err == nil {
				val = v
			} else {
				val = quoted
			}
		} else {
			if sp := strings.IndexByte(s, ' '); sp >= 0 {
				val, s = s[:sp], s[sp:]
			} else {
				val, s = s, ""
			}
		}
		out[key] = val
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lineWriter splits a stream into lines, prefixes each into dst and hands
// it to onLine.
type lineWriter struct {
	prefix  string
	dst     io.Writer
	onLine  func(string)
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		fmt.Fprintf(w.dst, "%s%s\n", w.prefix, line)
		if w.onLine != nil {
			w.onLine(line)
		}
	}
	return len(p), nil
}

// ---------------------------------------------------------------------------
// HTTP client side

var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	},
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) Reason() string { return r.Header.Get("x-skyring-reason") }

func (r response) String() string {
	return fmt.Sprintf("%d reason=%q location=%q body=%q", r.Status, r.Reason(), r.Header.Get("Location"), r.Body)
}

// do sends a request to the node. body is sent raw when a string or []byte,
// as JSON otherwise, and not at all when nil. hdr is key, value pairs.
//
// A GET answered 504 (relayed to an owner that did not answer in time: a
// loaded machine) is sent again, a few times: it changes nothing, so
// asking again is what any client would do. Other methods are left to the
// caller: the first request may have been carried out.
func (p *proc) do(t testing.TB, method, path string, body any, hdr ...string) response {
	t.Helper()
	r, err := p.try(method, path, body, hdr...)
	for tries := 1; err == nil && method == http.MethodGet && r.Status == http.StatusGatewayTimeout && tries < 5; tries++ {
		r, err = p.try(method, path, body, hdr...)
	}
	require.NoErrorf(t, err, "%s %s", method, path)
	return r
}

func (p *proc) try(method, path string, body any, hdr ...string) (response, error) {
	p.mu.Lock()
	base := p.URL
	p.mu.Unlock()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// requireUp checks GET /ping answers 200 with an empty body.
func (p *proc) requireUp(t testing.TB) {
	t.Helper()
	r := p.do(t, http.MethodGet, "/ping", nil)
	require.Equal(t, http.StatusOK, r.Status, "GET /ping: %s", r)
	require.Empty(t, r.Body, "GET /ping body")
}

// requireError checks an error answer: its status and a one-line
// x-skyring-reason.
func requireError(t testing.TB, r response, status int, msgAndArgs ...any) {
	t.Helper()
	require.Equalf(t, status, r.Status, "%s (%s)", fmt.Sprint(msgAndArgs...), r)
	require.NotEmptyf(t, strings.TrimSpace(r.Reason()), "x-skyring-reason missing: %s (%s)", fmt.Sprint(msgAndArgs...), r)
	require.NotContains(t, r.Reason(), "\n")
}

// timerPath is /timer/<id> with the id escaped.
func timerPath(id string) string { return "/timer/" + url.PathEscape(id) }

// body returns a valid create body: a long timeout, string data, an http
// post callback to the sink path. Tests edit the map.
func body(s *sink, path string) map[string]any {
	return map[string]any{
		"timeout": longTimeout,
		"data":    "hello",
		"callback": map[string]any{
			"transport": "http",
			"method":    "post",
			"uri":       s.URL(path),
		},
	}
}

// createTimer POSTs b, requires 201 with a Location /timer/<id> and returns
// the id and the moment just before the request was sent (a timer created
// with timeout T is due no sooner than sent+T).
func (p *proc) createTimer(t testing.TB, b any, hdr ...string) (id string, sent time.Time) {
	t.Helper()
	sent = time.Now()
	r := p.do(t, http.MethodPost, "/timer", b, hdr...)
	require.Equalf(t, http.StatusCreated, r.Status, "POST /timer: %s", r)
	require.Empty(t, r.Body, "201 body")
	return locationID(t, r), sent
}

// createDue creates b with "at" set lead from now and returns the id and
// the due time (Unix ms). A create answered 400 because its at had passed
// by the time the node read it (a slow machine) is sent again with twice
// the lead, up to a minute; any other answer than 201 fails the test.
func (p *proc) createDue(t testing.TB, b map[string]any, lead time.Duration, hdr ...string) (string, int64) {
	t.Helper()
	for {
		at := atIn(lead)
		r := p.do(t, http.MethodPost, "/timer", with(b, "timeout", remove, "at", at), hdr...)
		if r.Status == http.StatusBadRequest && strings.Contains(r.Reason(), "future") &&
			time.Now().UnixMilli() >= at && lead < time.Minute {
			lead *= 2
			continue
		}
		require.Equalf(t, http.StatusCreated, r.Status, "POST /timer: %s", r)
		require.Empty(t, r.Body, "201 body")
		return locationID(t, r), at
	}
}

// locationID extracts and unescapes the id of a Location: /timer/<id>.
func locationID(t testing.TB, r response) string {
	t.Helper()
	loc := r.Header.Get("Location")
	esc, ok := strings.CutPrefix(loc, "/timer/")
	require.Truef(t, ok, "Location %q is not /timer/<id>", loc)
	require.NotEmpty(t, esc, "Location %q", loc)
	if id, err := url.PathUnescape(esc); err == nil {
		return id
	}
	return esc // an id sent as it is (the original does not escape)
}

// timerInfo is the body of GET /timer/:id.
type timerInfo struct {
	ID       string          `json:"id"`
	Timeout  int64           `json:"timeout"`
	Data     json.RawMessage `json:"data"`
	Callback struct {
		Transport string `json:"transport"`
		Method    string `json:"method"`
		URI       string `json:"uri"`
	} `json:"callback"`
	Created int64  `json:"created"`
	Due     int64  `json:"due"`
	Node    string `json:"node"`

	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	NextAttempt int64  `json:"next_attempt"`
	LastError   string `json:"last_error"`
	LastStatus  int    `json:"last_status"`
	DeliveredAt int64  `json:"delivered_at"`
	FinishedAt  int64  `json:"finished_at"`
}

// requireState checks that GET /timer/:id through p answers 200 with the
// given state, and returns what it showed.
func (p *proc) requireState(t testing.TB, id, state, msg string) timerInfo {
	t.Helper()
	info := p.getTimer(t, id)
	require.Equalf(t, state, info.State, "%s: GET %s", msg, id)
	return info
}

// DueTime is the due time GET reported (ms, so possibly up to 1ms before the
// exact instant the node arms).
func (i timerInfo) DueTime() time.Time { return time.UnixMilli(i.Due) }

// tryTimer is GET /timer/<id> that leaves the status to the caller: the
// answer, and what it says when it is 200.
func (p *proc) tryTimer(t testing.TB, id string) (timerInfo, response) {
	t.Helper()
	var info timerInfo
	r := p.do(t, http.MethodGet, timerPath(id), nil)
	if r.Status == http.StatusOK {
		require.NoErrorf(t, json.Unmarshal(r.Body, &info), "GET body %q", r.Body)
	}
	return info, r
}

func (p *proc) getTimer(t testing.TB, id string) timerInfo {
	t.Helper()
	r := p.do(t, http.MethodGet, timerPath(id), nil)
	require.Equalf(t, http.StatusOK, r.Status, "GET %s: %s", timerPath(id), r)
	var info timerInfo
	require.NoErrorf(t, json.Unmarshal(r.Body, &info), "GET body %q", r.Body)
	return info
}

// ---------------------------------------------------------------------------
// Callback sink

// arrival is one callback the sink received.
type arrival struct {
	Path   string
	Method string
	Header http.Header
	Body   []byte
	At     time.Time // when the request reached the handler
}

// ID is the timer id the node put in x-skyring-timer-id.
func (a arrival) ID() string { return a.Header.Get("x-skyring-timer-id") }

// sink is an HTTP server on 127.0.0.1 that records every request. A path
// under /status/<code>/ answers that code; under /slow/ the answer waits
// until the client gives up or the test ends; anything else answers 200.
type sink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	all    []arrival
	byPath map[string][]int
	notify chan struct{}
	stop   chan struct{}
	seq    atomic.Int64
}

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{byPath: map[string][]int{}, notify: make(chan struct{}), stop: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.stop)
		s.srv.Close()
	})
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.all = append(s.all, arrival{Path: r.URL.Path, Method: r.Method, Header: r.Header.Clone(), Body: b, At: at})
	s.byPath[r.URL.Path] = append(s.byPath[r.URL.Path], len(s.all)-1)
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/status/"):
		code, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(r.URL.Path, "/status/"), "/", 2)[0])
		w.WriteHeader(code)
	case strings.HasPrefix(r.URL.Path, "/slow/"):
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// URL is the absolute callback URI for path.
func (s *sink) URL(path string) string { return s.srv.URL + path }

// Path returns a fresh unique path: /cb/<tag>-<n>, or <tag>-<n> when tag
// starts with a slash (e.g. "/status/500/fail", "/slow/x").
func (s *sink) Path(tag string) string {
	if !strings.HasPrefix(tag, "/") {
		tag = "/cb/" + tag
	}
	return fmt.Sprintf("%s-%d", tag, s.seq.Add(1))
}

// waitFor waits until cond holds over the arrivals (called under the lock).
func (s *sink) waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.notify
		n := len(s.all)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("sink: %s: not within %v (%d arrivals in all)", what, d, n)
		}
	}
}

// waitPath waits for the first arrival at path and returns it.
func (s *sink) waitPath(t testing.TB, path string, d time.Duration) arrival {
	t.Helper()
	s.waitFor(t, d, "callback at "+path, func() bool { return len(s.byPath[path]) > 0 })
	return s.Arrivals(path)[0]
}

// waitDelivered waits until at least n callbacks have arrived in all.
func (s *sink) waitDelivered(t testing.TB, n int, d time.Duration) {
	t.Helper()
	s.waitFor(t, d, fmt.Sprintf("%d callbacks", n), func() bool { return len(s.all) >= n })
}

// Arrivals at path, in order.
func (s *sink) Arrivals(path string) []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]arrival, 0, len(s.byPath[path]))
	for _, i := range s.byPath[path] {
		out = append(out, s.all[i])
	}
	return out
}

// Count is the number of arrivals at path.
func (s *sink) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byPath[path])
}

// All arrivals so far.
func (s *sink) All() []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]arrival(nil), s.all...)
}

// barrier creates a timer due after timeout ms and waits for its callback.
// Timers due well before it have had their chance to call back by then.
func (s *sink) barrier(t testing.TB, p *proc, timeoutMS int) {
	t.Helper()
	path := s.Path("barrier")
	b := body(s, path)
	b["timeout"] = timeoutMS
	p.createTimer(t, b)
	s.waitPath(t, path, time.Duration(timeoutMS)*time.Millisecond+deliverWait)
}

// requireNotEarly checks that a callback did not arrive before due.
func requireNotEarly(t testing.TB, a arrival, due time.Time, what string) {
	t.Helper()
	require.Falsef(t, a.At.Before(due), "%s: callback at %s arrived %v before its due time %s",
		what, a.At.Format(time.RFC3339Nano), due.Sub(a.At), due.Format(time.RFC3339Nano))
}

// requireNotEarlyWall is requireNotEarly for a due time that came from the
// node (wall clock, Unix ms): it compares wall clocks.
func requireNotEarlyWall(t testing.TB, a arrival, dueMS int64, what string) {
	t.Helper()
	at := a.At.Round(0)
	require.GreaterOrEqualf(t, at.UnixNano(), dueMS*int64(time.Millisecond),
		"%s: callback at %s arrived before its due time %s", what,
		at.Format(time.RFC3339Nano), time.UnixMilli(dueMS).Format(time.RFC3339Nano))
}

// closedPortURL returns an http URL on 127.0.0.1 where nothing listens.
func closedPortURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr + "/nobody-home"
}

// ---------------------------------------------------------------------------
// NATS events

// event is one message on skyring.events.* or skyring.node.*.
type event struct {
	Subject string
	Type    string
	Timer   string
	Node    string
	Fields  map[string]any
	Seq     int // order of arrival on this collector
}

// events collects the messages on its subjects.
type events struct {
	nc     *nats.Conn
	mu     sync.Mutex
	list   []event
	notify chan struct{}
}

// subscribeEvents connects to url and subscribes to subjects (wildcards
// allowed). The subscription is in place when it returns.
func subscribeEvents(t testing.TB, url string, subjects ...string) *events {
	t.Helper()
	require.NotEmpty(t, url, "no NATS url")
	nc, err := nats.Connect(url, nats.Name("skyring-e2e"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoErrorf(t, err, "connect to NATS at %s", url)
	t.Cleanup(nc.Close)
	e := &events{nc: nc, notify: make(chan struct{})}
	for _, subj := range subjects {
		_, err := nc.Subscribe(subj, func(m *nats.Msg) {
			ev := event{Subject: m.Subject}
			if err := json.Unmarshal(m.Data, &ev.Fields); err != nil {
				ev.Fields = map[string]any{"_raw": string(m.Data), "_error": err.Error()}
			}
			ev.Type, _ = ev.Fields["type"].(string)
			ev.Timer, _ = ev.Fields["timer"].(string)
			ev.Node, _ = ev.Fields["node"].(string)
			e.mu.Lock()
			ev.Seq = len(e.list)
			e.list = append(e.list, ev)
			close(e.notify)
			e.notify = make(chan struct{})
			e.mu.Unlock()
		})
		require.NoError(t, err)
	}
	require.NoError(t, nc.Flush())
	return e
}

// wait returns the first event on subject (exact) for timer id ("" for
// any), waiting up to d.
func (e *events) wait(t testing.TB, subject, timer string, d time.Duration) event {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		for _, ev := range e.list {
			if ev.Subject == subject && (timer == "" || ev.Timer == timer) {
				e.mu.Unlock()
				return ev
			}
		}
		ch := e.notify
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %s event for timer %q within %v; got:\n%s", subject, timer, d, e.dump())
		}
	}
}

// find returns the events on subject for timer id.
func (e *events) find(subject, timer string) []event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []event
	for _, ev := range e.list {
		if ev.Subject == subject && (timer == "" || ev.Timer == timer) {
			out = append(out, ev)
		}
	}
	return out
}

func (e *events) dump() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.list {
		j, _ := json.Marshal(ev.Fields)
		fmt.Fprintf(&b, "  %s %s\n", ev.Subject, j)
	}
	return b.String()
}
