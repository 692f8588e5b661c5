package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
)

// childEnv makes the test binary act as the trivial-target subcommand, so the
// baseline's real re-exec path (os.Executable) is tested.
const childEnv = "LOADGEN_TEST_TRIVIAL_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		app := &cli.App{Name: "skyring", Commands: []*cli.Command{TrivialCommand()}}
		if err := app.Run(os.Args); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	// The awaited-mode tests spend most of their time waiting for their
	// timers' due instant; let a few of them wait side by side even on a
	// 2-core machine (GOMAXPROCS is -parallel's default). An explicit
	// -test.parallel wins.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", "4")
	}
	goleak.VerifyTestMain(m)
}

// Bounds of the tests. A loaded machine (2 cores, -race, other packages'
// tests and other work beside them) may make a test slower, never make it
// fail, so no test counts on the machine's speed:
//   - patience bounds every wait, the tests' own and their runs' (Wait,
//     RequestTimeout). Runs end on events (every timer arrived, the fake is
//     settled), so a passing test never waits it out; reaching it is a
//     failure, reported, never a hang.
//   - an awaited run needs each create done before its timer's due instant.
//     It starts with firstLead; when the tool reports the creates did not
//     keep ahead (see fitLead), the run is repeated with a longer lead, up
//     to maxLead.
const (
	patience  = 2 * time.Minute
	firstLead = 2 * time.Second
	maxLead   = 2 * time.Minute
)

// small is the base of the awaited-mode runs: a couple of hundred timers.
// The awaited tests run in parallel to keep the package fast.
func small(target string, mode Mode) Config {
	return Config{
		Targets:        []string{target},
		Mode:           mode,
		Concurrency:    8,
		Count:          200,
		Rate:           1000,
		Lead:           firstLead,
		Wait:           patience,
		Settle:         50 * time.Millisecond,
		RequestTimeout: patience,
	}
}

// fitLead runs an awaited bench of planned timers with a lead the machine
// keeps up with. Every create must be done before its timer's due instant,
// and on a loaded machine firstLead may be too short: the tool says so
// itself, with a warning ending in leadHint (creates cut off by the due
// instant, skipped as behind the schedule, or refused because their due
// instant passed in flight); an attempt may also find the lead too short
// for what it checks and say why in slow. Then attempt runs again, on fresh
// targets, with the lead the creates seen would have needed, twice over, up
// to maxLead. The caller asserts exactly on the run returned: the first
// that kept up, or the one with maxLead.
func fitLead(t *testing.T, planned int64, attempt func(lead time.Duration) (res *Result, slow string, err error)) (*Result, error) {
	t.Helper()
	lead := firstLead
	for {
		res, slow, err := attempt(lead)
		if res == nil || lead >= maxLead {
			return res, err
		}
		if outranLead(res) {
			slow = strings.Join(slices.DeleteFunc(append([]string{slow}, res.Warnings...), func(s string) bool { return s == "" }), "; ")
		} else if slow == "" {
			return res, err
		}
		next := maxLead
		if res.Creates > 0 {
			// About res.Creates creates fitted in the lead.
			next = min(maxLead, max(2*lead, time.Duration(2*int64(lead)*planned/res.Creates)))
		}
		t.Logf("a %s lead was too short (%d of %d created; %s); again with %s", lead, res.Creates, planned, slow, next)
		lead = next
	}
}

// fits adapts an attempt that checks nothing the lead could spoil.
func fits(res *Result, err error) (*Result, string, error) { return res, "", err }

// outranLead reports whether res says its creates did not keep ahead of
// their due instants.
func outranLead(res *Result) bool {
	return slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.HasSuffix(w, leadHint) })
}

// progressWatch is a progress writer that closes awaiting once the run
// reports its creates are over and it awaits the deliveries.
type progressWatch struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	once     sync.Once
	awaiting chan struct{}
}

func newProgressWatch() *progressWatch { return &progressWatch{awaiting: make(chan struct{})} }

func (p *progressWatch) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bytes.Contains(b, []byte(awaitingMsg)) {
		p.once.Do(func() { close(p.awaiting) })
	}
	return p.buf.Write(b)
}

func (p *progressWatch) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// lastJSON writes res as the CLI does and decodes its last line generically.
func lastJSON(t *testing.T, res *Result) map[string]any {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, res.WriteText(&out))
	require.NoError(t, res.WriteJSON(&out))
	return decodeLastLine(t, out.String())
}

func decodeLastLine(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &m), "last line: %s", lines[len(lines)-1])
	for _, k := range []string{"mode", "targets", "concurrency", "creates", "create_errors", "create_per_sec",
		"latency_ms", "delivered", "missing", "duplicates", "early", "lateness_ms"} {
		require.Contains(t, m, k)
	}
	for _, k := range []string{"latency_ms", "lateness_ms"} {
		require.IsType(t, map[string]any{}, m[k])
		for _, p := range []string{"p50", "p90", "p99", "max"} {
			require.Contains(t, m[k], p)
		}
	}
	return m
}

// lastResult decodes the report the CLI printed last, nil if there is none.
func lastResult(t *testing.T, out string) *Result {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var res Result
	if json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil {
		return nil
	}
	return &res
}

func requireAllDelivered(t *testing.T, res *Result, n int64) {
	t.Helper()
	require.Equal(t, n, res.Creates, "errors: %v", res.ErrorSamples)
	require.Zero(t, res.CreateErrors)
	require.Equal(t, n, res.Delivered)
	require.Zero(t, res.Missing)
	require.Zero(t, res.Duplicates)
	require.Zero(t, res.Early)
	require.Zero(t, res.Unexpected)
	require.Zero(t, res.BadData)
	require.Positive(t, res.Lateness.Max)
}

func TestRunInstant(t *testing.T) {
	t.Parallel()
	var progress *progressWatch
	res, err := fitLead(t, 200, func(lead time.Duration) (*Result, string, error) {
		ft := newFakeTarget(t, faults{})
		cfg := small(ft.URL(), ModeInstant)
		cfg.Lead = lead
		progress = newProgressWatch()
		return fits(Run(context.Background(), cfg, progress))
	})
	require.NoError(t, err)
	requireAllDelivered(t, res, 200)
	require.Contains(t, progress.String(), awaitingMsg+" 200 timers for at most "+patience.String())
	require.Positive(t, res.CreatePerSec)
	require.Positive(t, res.Latency.Max)
	require.Equal(t, "http", res.Transport)

	m := lastJSON(t, res)
	require.Equal(t, "instant", m["mode"])
	require.EqualValues(t, 200, m["delivered"])
	require.EqualValues(t, 0, m["early"])
	require.NotContains(t, m, "baseline_per_sec")
}

func TestRunRate(t *testing.T) {
	t.Parallel()
	for _, data := range []string{DataString, DataObject} {
		t.Run(data, func(t *testing.T) {
			t.Parallel()
			res, err := fitLead(t, 200, func(lead time.Duration) (*Result, string, error) {
				ft := newFakeTarget(t, faults{})
				cfg := small(ft.URL(), ModeRate)
				cfg.Count = 0
				cfg.Duration = 200 * time.Millisecond // 1000/s: 200 timers
				cfg.Data = data
				cfg.Lead = lead
				return fits(Run(context.Background(), cfg, nil))
			})
			require.NoError(t, err)
			requireAllDelivered(t, res, 200)
			require.Equal(t, "rate", lastJSON(t, res)["mode"])
		})
	}
}

// Two targets share the creates round-robin.
func TestRunTwoTargets(t *testing.T) {
	t.Parallel()
	var a, b *fakeTarget
	res, err := fitLead(t, 200, func(lead time.Duration) (*Result, string, error) {
		a, b = newFakeTarget(t, faults{}), newFakeTarget(t, faults{})
		cfg := small(a.URL(), ModeInstant)
		cfg.Targets = append(cfg.Targets, b.URL())
		cfg.Lead = lead
		return fits(Run(context.Background(), cfg, nil))
	})
	require.NoError(t, err)
	requireAllDelivered(t, res, 200)
	require.EqualValues(t, 100, a.creates.Load())
	require.EqualValues(t, 100, b.creates.Load())
}

// The tool sees what a broken server does: lost, doubled and early
// deliveries.
func TestRunDetectsFaults(t *testing.T) {
	t.Parallel()
	res, err := fitLead(t, 200, func(lead time.Duration) (*Result, string, error) {
		// The early ones fire as soon as they are created; they are early
		// for the sink only if they reach it before their due instant,
		// which the fake checks.
		ft := newFakeTarget(t, faults{dropEvery: 10, dupEvery: 25, earlyEvery: 20, early: lead})
		cfg := small(ft.URL(), ModeInstant)
		cfg.Lead = lead
		// The dropped timers never come, so the run would wait out its
		// Wait: stop it once its creates are over and the fake has
		// delivered everything it will (dups included).
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		progress := newProgressWatch()
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			select {
			case <-progress.awaiting:
			case <-ctx.Done():
				return
			}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for !ft.settled() {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
			cancel()
		}()
		res, err := Run(ctx, cfg, progress)
		cancel()
		<-stopped
		if n := ft.answeredEarly.Load(); n != 10 {
			return res, fmt.Sprintf("%d of the 10 early deliveries were answered before their due instant", n), err
		}
		return res, "", err
	})
	// Stopped by the test, not by the Wait bound.
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrDeliveriesMissing)
	require.EqualValues(t, 200, res.Creates)
	require.EqualValues(t, 20, res.Missing)
	require.EqualValues(t, 180, res.Delivered)
	// Every 25th is doubled unless it is also dropped (50, 100, 150 and
	// 200 are): 8 - 4 = 4.
	require.EqualValues(t, 4, res.Duplicates)
	// 3, 23, ..., 183 fire early, and none of them is dropped or doubled.
	require.EqualValues(t, 10, res.Early)
	require.Contains(t, strings.Join(res.Warnings, "\n"), "10 deliveries arrived before their due instant")
}

// --wait bounds the wait for deliveries that never come, and the run says
// so with an error and its full report.
func TestRunWaitBound(t *testing.T) {
	t.Parallel()
	ft := newFakeTarget(t, faults{dropEvery: 1})
	cfg := small(ft.URL(), ModeInstant)
	cfg.Count = 5
	cfg.Lead = time.Hour // every create is in time, however slow; none is delivered
	cfg.Wait = 200 * time.Millisecond
	res, err := Run(context.Background(), cfg, nil)
	require.ErrorIs(t, err, ErrDeliveriesMissing)
	const msg = "awaiting deliveries: 0 of 5 arrived before the deadline (--wait 200ms after the creates)"
	require.ErrorContains(t, err, msg)
	require.NotNil(t, res)
	require.EqualValues(t, 5, res.Creates)
	require.EqualValues(t, 5, res.Missing)
	require.Zero(t, res.Delivered)
	require.Contains(t, strings.Join(res.Warnings, "\n"), msg)
}

func TestRunCreateErrors(t *testing.T) {
	t.Parallel()
	ft := newFakeTarget(t, faults{reject: 503})
	cfg := small(ft.URL(), ModeCreate)
	cfg.Count = 50
	res, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.Zero(t, res.Creates)
	require.EqualValues(t, 50, res.CreateErrors)
	require.Equal(t, []string{"status 503: rejected by the fake"}, res.ErrorSamples)
}

func TestRunCreateMode(t *testing.T) {
	t.Parallel()
	ft := newFakeTarget(t, faults{})
	cfg := small(ft.URL(), ModeCreate)
	cfg.Count = 300
	var progress bytes.Buffer
	res, err := Run(context.Background(), cfg, &progress)
	require.NoError(t, err)
	require.EqualValues(t, 300, res.Creates)
	require.Equal(t, 300, ft.pending(), "create-mode timers stay pending")
	require.Zero(t, res.Delivered)
	require.Contains(t, progress.String(), "remain pending")
	require.Equal(t, "create", lastJSON(t, res)["mode"])
}

func TestRunFloor(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{ModeInstant, ModeRate} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			cfg := small("http://127.0.0.1:1", mode) // never contacted
			cfg.Floor = true
			cfg.FloorConns = 16
			res, err := Run(context.Background(), cfg, nil)
			require.NoError(t, err)
			requireAllDelivered(t, res, 200)
			require.Equal(t, "floor", res.Transport)
			require.Zero(t, res.DeliveryErrors)
			require.EqualValues(t, 200, lastJSON(t, res)["delivered"])
		})
	}
}

func TestRunNATS(t *testing.T) {
	t.Parallel()
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	s := natstest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL(), nats.Timeout(patience))
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	for _, mode := range []string{NATSRequest, NATSPublish} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			attempt := 0
			res, err := fitLead(t, 200, func(lead time.Duration) (*Result, string, error) {
				// The subtests, and the attempts, run on their own subjects.
				attempt++
				prefix := fmt.Sprintf("bench-%s-%d", mode, attempt)
				ft := newFakeTarget(t, faults{})
				ft.serveNATS(nc, prefix)
				if err := nc.FlushTimeout(patience); err != nil {
					return nil, "", err
				}
				cfg := small("", ModeInstant)
				cfg.Targets = nil
				cfg.NATSURL = s.ClientURL()
				cfg.NATSMode = mode
				cfg.NATSConns = 2
				cfg.Prefix = prefix
				cfg.Lead = lead
				return fits(Run(context.Background(), cfg, nil))
			})
			require.NoError(t, err)
			requireAllDelivered(t, res, 200)
			require.Equal(t, "nats-"+mode, res.Transport)
			require.Equal(t, []string{s.ClientURL()}, res.Targets)
		})
	}
}

func TestRunNATSRequestErrors(t *testing.T) {
	t.Parallel()
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	s := natstest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	cfg := small("", ModeCreate)
	cfg.Targets = nil
	cfg.Count = 5
	cfg.NATSURL = s.ClientURL()
	res, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.EqualValues(t, 5, res.CreateErrors)
	require.Equal(t, []string{"no responders on skyring.timer.create"}, res.ErrorSamples)
}

func TestRunBaselineInProcess(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	trivial := ServeTrivial(ln)
	t.Cleanup(func() { _ = trivial.Close() })

	res, err := fitLead(t, 200, func(lead time.Duration) (*Result, string, error) {
		ft := newFakeTarget(t, faults{})
		cfg := small(ft.URL(), ModeInstant)
		cfg.Baseline = true
		cfg.BaselineURL = "http://" + ln.Addr().String()
		cfg.Lead = lead
		return fits(Run(context.Background(), cfg, nil))
	})
	require.NoError(t, err)
	requireAllDelivered(t, res, 200)
	require.NotNil(t, res.BaselinePerSec)
	require.Positive(t, *res.BaselinePerSec)
	require.NotNil(t, res.Ratio)
	m := lastJSON(t, res)
	require.Contains(t, m, "baseline_per_sec")
	require.Contains(t, m, "ratio")
}

// The real path: the baseline target is this executable re-run as
// trivial-target in a child process.
func TestRunBaselineProcess(t *testing.T) {
	t.Setenv(childEnv, "1")
	ft := newFakeTarget(t, faults{})
	cfg := small(ft.URL(), ModeCreate)
	cfg.Count = 200
	cfg.Baseline = true
	var progress bytes.Buffer
	res, err := Run(context.Background(), cfg, &progress)
	require.NoError(t, err)
	require.EqualValues(t, 200, res.Creates)
	require.NotNil(t, res.BaselinePerSec)
	require.Positive(t, *res.BaselinePerSec)
	require.Contains(t, progress.String(), "trivial target http://127.0.0.1:")
}

func TestStartTrivialFails(t *testing.T) {
	_, err := startTrivial(context.Background(), []string{"/bin/true"}, patience)
	require.ErrorContains(t, err, "without printing its address")
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, cfg := range []Config{
		{Targets: []string{"http://10.1.2.3:3000"}},
		{Targets: []string{"http://127.0.0.1:3000", "http://example.com:3000"}},
		{Targets: []string{"http://[2001:db8::1]:3000"}},
		{NATSURL: "nats://192.168.1.10:4222"},
		{NATSURL: "nats://127.0.0.1:4222,nats://nats.example.com:4222"},
		{SinkAddr: "0.0.0.0:0"},
		{Baseline: true, BaselineURL: "http://203.0.113.9:80"},
	} {
		_, err := Run(context.Background(), cfg, nil)
		require.ErrorIs(t, err, ErrNotLoopback, "%+v", cfg)
	}
	for _, host := range []string{"127.0.0.1", "127.9.8.7", "localhost", "[::1]"} {
		_, err := parseTarget("http://" + host + ":3000")
		require.NoError(t, err, host)
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Mode: "burst"},
		{Mode: ModeCreate, Floor: true},
		{Mode: ModeInstant, Floor: true, NATSURL: "nats://127.0.0.1:4222"},
		{Mode: ModeInstant, Floor: true, Baseline: true},
		{Mode: ModeRate, Rate: -1},
		{Mode: ModeRate, Rate: 1, Duration: time.Millisecond},
		{Mode: ModeInstant, Count: MaxTimers + 1},
		{Concurrency: -1},
		{Data: "xml"},
		{NATSMode: "stream"},
		{Targets: []string{"https://127.0.0.1:3000"}},
	} {
		_, err := Run(context.Background(), cfg, nil)
		require.ErrorIs(t, err, ErrInvalidConfig, "%+v", cfg)
	}
}

func TestRunUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Run(context.Background(), Config{Targets: []string{"http://" + addr}, Count: 1}, nil)
	require.ErrorContains(t, err, "not answering")
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	ft := newFakeTarget(t, faults{})
	cfg := small(ft.URL(), ModeInstant)
	cfg.Lead = time.Hour // would wait an hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var (
		res *Result
		err error
	)
	go func() {
		defer close(done)
		res, err = Run(ctx, cfg, nil)
	}()
	require.Eventually(t, func() bool { return ft.creates.Load() == 200 }, patience, 5*time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatalf("Run did not return within %s of its cancel", patience)
	}
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, res)
	// The last create may have been cut off by the cancel.
	require.Positive(t, res.Creates)
	require.Equal(t, res.Creates, res.Missing)
}

func TestCommand(t *testing.T) {
	t.Parallel()
	var (
		ft             *fakeTarget
		stdout, stderr bytes.Buffer
		app            *cli.App
	)
	_, err := fitLead(t, 100, func(lead time.Duration) (*Result, string, error) {
		ft = newFakeTarget(t, faults{})
		stdout.Reset()
		stderr.Reset()
		app = &cli.App{
			Name:      "skyring",
			Writer:    &stdout,
			ErrWriter: &stderr,
			Commands:  []*cli.Command{Command(), TrivialCommand()},
		}
		err := app.Run([]string{"skyring", "bench", "--url", ft.URL(), "-c", "4", "-n", "100",
			"--mode", "instant", "--lead", lead.String(), "--settle", "10ms",
			"--wait", patience.String(), "--request-timeout", patience.String()})
		return lastResult(t, stdout.String()), "", err
	})
	require.NoError(t, err, stderr.String())
	m := decodeLastLine(t, stdout.String())
	require.Equal(t, "instant", m["mode"])
	require.EqualValues(t, 100, m["delivered"])
	require.EqualValues(t, 4, m["concurrency"])
	require.Equal(t, []any{ft.URL()}, m["targets"])
	require.Contains(t, stdout.String(), "delivered:  100")

	err = app.Run([]string{"skyring", "bench", "--url", "http://192.0.2.1:3000"})
	require.ErrorIs(t, err, ErrNotLoopback)
}

// The create body is what Skyring's own parser reads back exactly: id, due
// to the nanosecond, data, callback.
func TestCreateBodyRoundTrip(t *testing.T) {
	ids := newIDScheme()
	due := time.Now().Add(time.Minute).UnixNano() + 123 // odd nanoseconds
	for _, object := range []bool{false, true} {
		b := newBodies(ids, object, 0, "http://127.0.0.1:9/cb?x=\"y\"")
		body := b.appendCreate(nil, 42, due)
		tm, err := skyring.ParseTimer(body, skyring.ParseParams{Now: time.Now(), IDField: true})
		require.NoError(t, err, string(body))
		require.Equal(t, ids.id(42), tm.ID)
		require.Equal(t, due, tm.Due)
		require.Equal(t, skyring.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1:9/cb?x=\"y\""}, tm.Callback)
		sent, isJSON := tm.Body()
		require.Equal(t, object, isJSON)
		require.Equal(t, string(b.appendData(nil, 42, due)), string(sent))
		id, gotDue, ok := parseData(sent)
		require.True(t, ok)
		require.Equal(t, ids.id(42), id)
		require.Equal(t, due, gotDue)
	}
	b := newBodies(ids, false, time.Hour, "http://127.0.0.1:9/cb")
	tm, err := skyring.ParseTimer(b.appendCreate(nil, 7, due), skyring.ParseParams{Now: time.Unix(0, 0), IDField: true})
	require.NoError(t, err)
	require.Equal(t, int64(time.Hour), tm.Due)
}

func TestIDScheme(t *testing.T) {
	ids := newIDScheme()
	for _, seq := range []int{0, 1, 99999999} {
		id := ids.id(seq)
		require.NoError(t, skyring.ValidateID(id))
		got, ok := ids.seq(id)
		require.True(t, ok)
		require.Equal(t, seq, got)
	}
	for _, id := range []string{"", "lg-00000000-1", ids.prefix, ids.prefix + "-1", ids.prefix + "+1", ids.prefix + "x", "x" + ids.id(1)} {
		_, ok := ids.seq(id)
		require.False(t, ok, id)
	}
}

func TestParseData(t *testing.T) {
	for _, c := range []struct {
		body string
		id   string
		due  int64
		ok   bool
	}{
		{"a-1|123", "a-1", 123, true},
		{`{"id":"a-1","due":123}`, "a-1", 123, true},
		{`{"id":"a-1"}`, "a-1", 0, false},
		{"a-1", "a-1", 0, false},
		{"a|b|x", "a|b", 0, false},
		{"", "", 0, false},
		{"{", "", 0, false},
	} {
		id, due, ok := parseData([]byte(c.body))
		require.Equal(t, c.id, id, c.body)
		require.Equal(t, c.due, due, c.body)
		require.Equal(t, c.ok, ok, c.body)
	}
}

func TestPercentiles(t *testing.T) {
	require.Equal(t, Percentiles{}, percentilesMs(nil))
	ns := make([]int64, 0, 1000)
	for i := 1000; i >= 1; i-- {
		ns = append(ns, int64(i)*int64(time.Millisecond))
	}
	require.Equal(t, Percentiles{P50: 500, P90: 900, P99: 990, Max: 1000}, percentilesMs(ns))
	require.Equal(t, Percentiles{P50: 0.002, P90: 0.002, P99: 0.002, Max: 0.002}, percentilesMs([]int64{1500}))
}

func TestSinkCloseIdempotent(t *testing.T) {
	s := newSink(newIDScheme(), 0, nil)
	require.NoError(t, s.Close()) // never started
	s = newSink(newIDScheme(), 0, nil)
	require.NoError(t, s.Start("127.0.0.1:0"))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
}

// Padded data (--data-pad) still carries the id and the due instant.
func TestPaddedData(t *testing.T) {
	ids := newIDScheme()
	for _, object := range []bool{false, true} {
		b := newBodies(ids, object, 0, "http://127.0.0.1:9/cb").withPad(62)
		data := b.appendData(nil, 7, 123456789)
		require.Greater(t, len(data), 62)
		id, due, ok := parseData(data)
		require.True(t, ok, "%s", data)
		require.Equal(t, ids.id(7), id)
		require.Equal(t, int64(123456789), due)
	}
}
