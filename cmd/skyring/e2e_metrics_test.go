package main_test

// Acceptance tests of the metrics and the health probes (issue 11): a real
// two-node cluster scraped at GET /metrics after creates, deliveries, a
// final failure, a relay and a hand-off, the exposition parsed with the Prometheus
// text parser; and /readyz turning 503 at SIGTERM while the HTTP API
// still serves, an in-flight request finishing after the API stopped
// taking new ones.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// families is one parsed scrape of GET /metrics.
type families map[string]*dto.MetricFamily

// scrape reads GET /metrics from p (with the headers hdr) and parses it
// with the Prometheus text parser.
func scrape(t testing.TB, p *proc, hdr ...string) families {
	t.Helper()
	r := p.do(t, http.MethodGet, "/metrics", nil, hdr...)
	require.Equalf(t, http.StatusOK, r.Status, "GET /metrics: %s", r)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	require.NoError(t, err, "the exposition parses")
	return families(fams)
}

// matches reports whether m has every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// sum adds up the counters or gauges of family name whose labels include
// want (kv pairs); -1 when the family is missing.
func (f families) sum(name string, kv ...string) float64 {
	fam, ok := f[name]
	if !ok {
		return -1
	}
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	total := 0.0
	for _, m := range fam.GetMetric() {
		if !matches(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// count is the sample count of histogram name (series with labels kv).
func (f families) count(name string, kv ...string) uint64 {
	fam, ok := f[name]
	if !ok {
		return 0
	}
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	var n uint64
	for _, m := range fam.GetMetric() {
		if matches(m, want) {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// scrapeAll sums a family over every node.
func scrapeAll(t testing.TB, nodes []*cnode) []families {
	t.Helper()
	out := make([]families, len(nodes))
	for i, n := range nodes {
		out[i] = scrape(t, n.proc)
	}
	return out
}

func total(fs []families, name string, kv ...string) float64 {
	s := 0.0
	for _, f := range fs {
		s += f.sum(name, kv...)
	}
	return s
}

func totalCount(fs []families, name string, kv ...string) uint64 {
	var s uint64
	for _, f := range fs {
		s += f.count(name, kv...)
	}
	return s
}

func TestE2EMetrics(t *testing.T) {
	t.Parallel()
	c := newEmbeddedCluster(t, skyringBin, 2)
	nodes := c.startN(2)
	n0 := nodes[0]
	s := newSink(t)

	// Creates through n0 until one was relayed to n1 (each create is owned
	// by n1 with even odds), all due at once; then one whose receiver
	// answers 400: a final failure.
	var ids []string
	for relayed := 0.0; relayed == 0 || len(ids) < 4; {
		id, _ := n0.createTimer(t, with(body(s, s.Path("ok")), "timeout", 20))
		ids = append(ids, id)
		relayed = scrape(t, n0.proc).sum("skyring_relays_total", "op", "create", "outcome", "ok")
		require.Less(t, len(ids), 200, "no create was relayed")
	}
	failID, _ := n0.createTimer(t, with(body(s, s.Path("/status/400/fail")), "timeout", 20))
	created := len(ids) + 1
	s.waitDelivered(t, created, 30*time.Second)

	// The outcomes are counted once written: wait for them.
	var fs []families
	deadline := time.Now().Add(30 * time.Second)
	for {
		fs = scrapeAll(t, nodes)
		if total(fs, "skyring_deliveries_total", "outcome", "success") == float64(len(ids)) &&
			total(fs, "skyring_deliveries_total", "outcome", "failed") == 1 {
			break
		}
		require.Truef(t, time.Now().Before(deadline), "outcomes not counted: success %v failed %v",
			total(fs, "skyring_deliveries_total", "outcome", "success"), total(fs, "skyring_deliveries_total", "outcome", "failed"))
		time.Sleep(20 * time.Millisecond)
	}
	n0.requireState(t, failID, "failed", "a 400 is a final failure")

	// Every family is there, on every node.
	for i, f := range fs {
		for _, name := range []string{
			"skyring_timer_commands_total", "skyring_deliveries_total", "skyring_delivery_attempts_total",
			"skyring_delivery_retries_total", "skyring_fire_lateness_seconds", "skyring_delivery_lateness_seconds",
			"skyring_timers_pending", "skyring_timers_failed", "skyring_timers_pending_due",
			"skyring_relays_total", "skyring_relay_duration_seconds", "skyring_handoff_timers_total",
			"skyring_handoff_duration_seconds", "skyring_ring_members", "skyring_ring_version",
			"skyring_storage_write_seconds", "go_goroutines", "process_cpu_seconds_total",
		} {
			require.Containsf(t, f, name, "node %d: family %s", i, name)
		}
		require.Equalf(t, 2.0, f.sum("skyring_ring_members"), "node %d: ring members", i)
		require.GreaterOrEqualf(t, f.sum("skyring_ring_version"), 1.0, "node %d: ring version", i)
		require.NotZerof(t, f.count("skyring_storage_write_seconds"), "node %d: storage writes timed", i)
		require.Equalf(t, f.sum("skyring_timers_pending"), f.sum("skyring_timers_pending_due"), "node %d: pending by due window adds up", i)
	}

	// Commands: every create entered n0 over HTTP; those n1 owns were
	// relayed, and counted on n1 as relayed commands.
	require.Equal(t, float64(created), fs[0].sum("skyring_timer_commands_total", "op", "create", "interface", "http", "outcome", "ok"))
	require.Zero(t, fs[1].sum("skyring_timer_commands_total", "interface", "http"))
	relayed := fs[0].sum("skyring_relays_total", "op", "create", "outcome", "ok")
	require.GreaterOrEqual(t, relayed, 1.0)
	require.Equal(t, relayed, fs[1].sum("skyring_timer_commands_total", "op", "create", "interface", "relay", "outcome", "ok"))
	require.Equal(t, uint64(relayed), fs[0].count("skyring_relay_duration_seconds", "op", "create"))
	require.Zero(t, fs[0].sum("skyring_timer_commands_total", "interface", "relay"), "n0 got no relay")

	// Deliveries: each attempt started is timed from its due time, and
	// each ended in one outcome, timed too.
	attempts := total(fs, "skyring_delivery_attempts_total", "transport", "http")
	outcomes := total(fs, "skyring_deliveries_total", "transport", "http")
	require.Equal(t, float64(created), attempts, "one attempt each: 200 delivers, 400 fails for good")
	require.Equal(t, attempts, outcomes)
	require.Zero(t, total(fs, "skyring_delivery_retries_total"))
	require.Equal(t, uint64(attempts), totalCount(fs, "skyring_fire_lateness_seconds"), "fire lateness count == attempts")
	require.Equal(t, uint64(outcomes), totalCount(fs, "skyring_delivery_lateness_seconds"), "delivery lateness count == outcomes")

	// What is held: one dead letter, nothing pending.
	require.Equal(t, 1.0, total(fs, "skyring_timers_failed"))
	require.Zero(t, total(fs, "skyring_timers_pending"))

	// A pending timer shows in its due window.
	n0.createTimer(t, with(body(s, s.Path("later")), "timeout", 2*60*60*1000))
	fs = scrapeAll(t, nodes)
	require.Equal(t, 1.0, total(fs, "skyring_timers_pending_due", "within", "1d"))
	require.Equal(t, 1.0, total(fs, "skyring_timers_pending"))

	// GET /cluster shows each node's own count live, not as of its last
	// heartbeat: the same as its pending gauge, right after the create.
	for i, n := range nodes {
		v, err := n.view()
		require.NoError(t, err)
		require.Equalf(t, fs[i].sum("skyring_timers_pending"), float64(v.Node.Timers), "node %d: /cluster's own count", i)
	}

	// The node that holds it leaves: it hands its timers (the dead letter
	// too, if it holds it) to the other, which counts them received.
	holder, other := 0, 1
	if fs[1].sum("skyring_timers_pending") == 1 {
		holder, other = 1, 0
	}
	require.Zero(t, fs[other].sum("skyring_handoff_timers_total", "direction", "received"))
	moving := fs[holder].sum("skyring_timers_pending") + fs[holder].sum("skyring_timers_failed")
	nodes[holder].Stop()
	deadline = time.Now().Add(30 * time.Second)
	for {
		f := scrape(t, nodes[other].proc)
		if f.sum("skyring_handoff_timers_total", "direction", "received") == moving {
			require.Equal(t, 1.0, f.sum("skyring_timers_pending"))
			require.Equal(t, 1.0, f.sum("skyring_timers_failed"))
			break
		}
		require.True(t, time.Now().Before(deadline), "the hand-off was not counted")
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2EMetricsOff: --metrics=false serves no /metrics.
func TestE2EMetricsOff(t *testing.T) {
	t.Parallel()
	p := startNode(t, "--metrics=false")
	r := p.do(t, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r)
	r = p.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
}

// TestE2EProbesAndToken: with a token, /metrics needs it like /cluster;
// /healthz and /readyz stay open, like /ping.
func TestE2EProbesAndToken(t *testing.T) {
	t.Parallel()
	p := startNode(t, "--http:token", "s3cret")
	r := p.do(t, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r)
	scrape(t, p, "Authorization", "Bearer s3cret")
	r = p.do(t, http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	r = p.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	require.JSONEq(t, `{"status":"ready"}`, string(r.Body))
}

// TestE2EReadyzAtShutdown: at SIGTERM /readyz answers 503 at once, while
// the HTTP API still serves (--shutdown:drain); then the API stops taking
// connections, and a request that was in flight all along (its body sent
// slowly) still completes.
func TestE2EReadyzAtShutdown(t *testing.T) {
	t.Parallel()
	p := startNode(t, "--shutdown:drain", "3s")
	s := newSink(t)
	r := p.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)

	// A create whose body is only half sent.
	u, err := url.Parse(p.URL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	payload := fmt.Sprintf(`{"timeout":3600000,"data":"in flight","callback":{"transport":"http","method":"post","uri":%q}}`, s.URL(s.Path("inflight")))
	half := len(payload) / 2
	_, err = fmt.Fprintf(conn, "POST /timer HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		u.Host, len(payload), payload[:half])
	require.NoError(t, err)

	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))

	// Not ready, while still serving (new connections, no keep-alive).
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() (int, error) {
		res, err := probe.Get(p.URL + "/readyz")
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	code, err := get()
	for err == nil && code == http.StatusOK {
		code, err = get()
	}
	require.NoError(t, err, "the HTTP API stopped before /readyz answered 503")
	require.Equal(t, http.StatusServiceUnavailable, code)

	// Then the API stops taking connections.
	deadline := time.Now().Add(stopTimeout)
	for {
		_, err := get()
		var op *net.OpError
		if err != nil && errors.As(err, &op) {
			break
		}
		require.Truef(t, time.Now().Before(deadline), "the HTTP API still takes requests (%v)", err)
		time.Sleep(20 * time.Millisecond)
	}

	// The in-flight request completes.
	_, err = conn.Write([]byte(payload[half:]))
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, "the in-flight create")
	require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/timer/"))

	select {
	case <-exited:
	case <-time.After(stopTimeout):
		t.Fatalf("skyring did not exit within %v", stopTimeout)
	}
	require.Zero(t, exitCode(p.exitErr()), "exit code: %v", p.exitErr())
	require.Contains(t, p.Output(), "not ready: draining", "log")
}
