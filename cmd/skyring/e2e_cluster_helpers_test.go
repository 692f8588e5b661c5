package main_test

// Helpers of the multi-process cluster tests (e2e_cluster_*_test.go): a
// cluster of `skyring run` processes started from one binary, convergence
// on GET /cluster, a round-robin load generator over the live nodes, and
// the delivery check every cluster test ends with (each acknowledged timer
// exactly once, never before its due time, nothing unexpected).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fast membership for tests: a heartbeat every 100ms, a silent member
// dropped after 3s. Thirty missed heartbeats: a loaded machine can starve a
// node (or the NATS server between them) for a second, and a live member
// dropped for that would change the ring under the test; a killed node is
// still dropped within seconds.
var fastMembership = []string{"--member:heartbeat", "100ms", "--member:timeout", "3s"}

// convergeWait bounds a wait for the members to agree on who is in the
// cluster: a heartbeat after a start, a member timeout after a kill. A
// bound, not a speed.
const convergeWait = 30 * time.Second

// ---------------------------------------------------------------------------
// A non-race binary for the heavy tests

var (
	fastBinOnce sync.Once
	fastBinPath string
	fastBinErr  error
)

// heavyBin is the skyring binary the heavy cluster tests run: built without
// -race (once, next to the race-built one) when the tests are built with
// -race, so that tens of thousands of timers stay fast; the race-built
// binary keeps serving the other tests. SKYRING_E2E_BIN overrides both.
func heavyBin(t testing.TB) string {
	t.Helper()
	if !raceEnabled || os.Getenv("SKYRING_E2E_BIN") != "" {
		return skyringBin
	}
	fastBinOnce.Do(func() {
		start := time.Now()
		fastBinPath = filepath.Join(filepath.Dir(skyringBin), "skyring-norace")
		cmd := exec.Command("go", "build", "-o", fastBinPath, ".")
		cmd.Env = os.Environ()
		if out, err := cmd.CombinedOutput(); err != nil {
			fastBinErr = fmt.Errorf("go build (no -race): %w\n%s", err, out)
			return
		}
		t.Logf("built the non-race skyring binary in %v", time.Since(start).Round(time.Millisecond))
	})
	require.NoError(t, fastBinErr)
	return fastBinPath
}

// ---------------------------------------------------------------------------
// Cluster

// cnode is one node of a test cluster.
type cnode struct {
	*proc
	Name    string // n0, n1, … by start order; like the node id, kept across restarts
	started time.Time
}

// cluster is a set of skyring processes started from one binary with the
// same membership settings.
type cluster struct {
	t     testing.TB
	bin   string
	args  []string // given to every node (seeds or --nats:hosts, membership)
	env   []string // environment of every node
	ports []int    // channel ports of the embedded-NATS nodes, by index
	nodes []*cnode // every node ever started, by index
}

// newEmbeddedCluster prepares slots embedded-NATS nodes: each gets its own
// free channel (route) port and every node lists all of them as seeds, so
// any one of them can go or come without cutting the others off. Nothing is
// started.
func newEmbeddedCluster(t testing.TB, bin string, slots int) *cluster {
	t.Helper()
	// Every embedded cluster authenticates its routes, from the
	// environment as an operator keeps it out of ps.
	c := &cluster{t: t, bin: bin, env: []string{"SKYRING_CHANNEL_SECRET=" + e2eClusterSecret}}
	for range slots {
		port := slotPort(t)
		c.ports = append(c.ports, port)
		c.args = append(c.args, "-s", "127.0.0.1:"+strconv.Itoa(port))
	}
	c.args = append(c.args, fastMembership...)
	return c
}

// slotPort returns a free port below the kernel's ephemeral range, for a
// channel port that is reserved now and listened on later: a port the
// kernel hands out for a listen on port 0 (a node's own free HTTP or NATS
// port, here or in another test) is never one of these, so it cannot be
// taken in between.
func slotPort(t testing.TB) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 11000 {
				low = v
			}
		}
	}
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		require.NoError(t, l.Close())
		return port
	}
	return freePort(t)
}

// e2eClusterSecret is the cluster secret of the embedded clusters.
const e2eClusterSecret = "e2e-cluster-secret-0123456789"

// newExternalCluster prepares nodes that use the given NATS servers.
func newExternalCluster(t testing.TB, bin string, natsURLs []string) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: bin}
	c.args = append([]string{"--nats:hosts", strings.Join(natsURLs, ",")}, fastMembership...)
	return c
}

// start starts the next node (its slot's channel port on embedded NATS),
// with extra args of its own after the cluster's, and waits until it is
// ready.
func (c *cluster) start(extra ...string) *cnode {
	c.t.Helper()
	n, wait := c.launch(extra...)
	wait()
	return n
}

// startTogether starts the next len(extras) nodes at once (node k with
// extras[k] after the cluster's args) and waits until each is ready: nodes
// that cannot be ready alone, such as the servers of an R3 JetStream
// cluster (a node's store waits for a quorum), start this way.
func (c *cluster) startTogether(extras ...[]string) []*cnode {
	c.t.Helper()
	var out []*cnode
	var waits []func()
	for _, extra := range extras {
		n, wait := c.launch(extra...)
		out = append(out, n)
		waits = append(waits, wait)
	}
	for _, wait := range waits {
		wait()
	}
	return out
}

// launch is start that returns at once, with the func that waits until the
// node is ready (on the test goroutine).
func (c *cluster) launch(extra ...string) (*cnode, func()) {
	c.t.Helper()
	i := len(c.nodes)
	args := append([]string{"--channel:host", "127.0.0.1"}, c.args...)
	args = append(args, extra...)
	if c.ports != nil {
		require.Less(c.t, i, len(c.ports), "no channel port slot left")
		args = append(args, "--channel:port", strconv.Itoa(c.ports[i]))
	}
	n := &cnode{proc: newProc(c.t, nodeConfig{Args: args, Env: c.env}), Name: fmt.Sprintf("n%d", i)}
	c.nodes = append(c.nodes, n)
	n.started = time.Now()
	return n, n.launch(c.bin)
}

// startN starts n nodes and waits until they all list each other.
func (c *cluster) startN(n int) []*cnode {
	c.t.Helper()
	var out []*cnode
	for range n {
		out = append(out, c.start())
	}
	d := c.waitConverged(out, convergeWait)
	c.t.Logf("%d nodes converged %v after the last one was ready", n, d.Round(time.Millisecond))
	return out
}

// restart starts n again on its data directory with the same flags.
func (c *cluster) restart(n *cnode) {
	c.t.Helper()
	n.started = time.Now()
	n.startBin(c.bin)
}

// clusterView is the body of GET /cluster.
type clusterView struct {
	Node struct {
		ID     string `json:"id"`
		HTTP   string `json:"http"`
		Timers int    `json:"timers"`
		NATS   string `json:"nats"`
	} `json:"node"`
	Members []struct {
		ID     string `json:"id"`
		HTTP   string `json:"http"`
		Timers int    `json:"timers"`
	} `json:"members"`
	RingVersion uint64 `json:"ring_version"`
}

func (v clusterView) memberIDs() []string {
	ids := make([]string, 0, len(v.Members))
	for _, m := range v.Members {
		ids = append(ids, m.ID)
	}
	sort.Strings(ids)
	return ids
}

// view reads GET /cluster.
func (n *cnode) view() (clusterView, error) {
	var v clusterView
	r, err := n.try(http.MethodGet, "/cluster", nil)
	if err != nil {
		return v, err
	}
	if r.Status != http.StatusOK {
		return v, fmt.Errorf("GET /cluster: %s", r)
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return v, fmt.Errorf("GET /cluster body %q: %w", r.Body, err)
	}
	return v, nil
}

// waitConverged polls GET /cluster on every node of live (every 20ms, up to
// d) until each lists exactly the ids of live, and returns how long it took.
func (c *cluster) waitConverged(live []*cnode, d time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	want := make([]string, 0, len(live))
	for _, n := range live {
		want = append(want, n.Node)
	}
	sort.Strings(want)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		var last string
		ok := true
		for _, n := range live {
			v, err := n.view()
			if err != nil {
				ok, last = false, fmt.Sprintf("%s: %v", n.Name, err)
				break
			}
			if got := v.memberIDs(); !slices.Equal(got, want) {
				ok, last = false, fmt.Sprintf("%s lists %v", n.Name, got)
				break
			}
		}
		if ok {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			c.t.Fatalf("cluster did not converge on %v within %v: %s", want, d, last)
		}
	}
}

// membersDropped reports whether any of nodes logged that it dropped a
// member for want of heartbeats. None of them was stopped: such a drop
// means the machine starved a node (or the NATS server) for a member
// timeout, and the ring changed under the test for a while.
func membersDropped(nodes []*cnode) bool {
	for _, n := range nodes {
		if strings.Contains(n.Output(), "member dropped") {
			return true
		}
	}
	return false
}

// timerCounts reads each node's own timer count from GET /cluster.
func timerCounts(t testing.TB, nodes []*cnode) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range nodes {
		v, err := n.view()
		require.NoError(t, err, n.Name)
		out[n.Name] = v.Node.Timers
	}
	return out
}

// ---------------------------------------------------------------------------
// Load: creates through the live nodes, round-robin

// createResult is what one create got.
type createResult struct {
	ID     string
	Due    int64 // the at sent, Unix ms
	Via    string
	Status int   // 0 when the request failed
	Err    error // transport error or a non-201 answer
	// Answered is when the (last) answer came.
	Answered time.Time
	Done     bool // the request was made
	// Unsettled: with retry504, still 504 when the timer came too close
	// to its due time to send it again: it may or may not be stored.
	Unsettled bool

	// With owner sampling (sampleOwners), for the sampled creates answered
	// 201: the owner GET /timer/<id> named right after the 201, "" when
	// there was no answer (readOwner); SampleErr for a wrong one.
	Sampled   bool
	Owner     string
	SampleErr error
}

// entries is the set of nodes creates go through, changed while creates
// flow: a node is removed (and its in-flight requests drained) before it is
// stopped.
type entries struct {
	mu       sync.Mutex
	nodes    []*cnode
	inflight map[*cnode]*sync.WaitGroup
	next     int
}

func newEntries(nodes ...*cnode) *entries {
	e := &entries{inflight: map[*cnode]*sync.WaitGroup{}}
	for _, n := range nodes {
		e.add(n)
	}
	return e
}

func (e *entries) add(n *cnode) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodes = append(e.nodes, n)
	if e.inflight[n] == nil {
		e.inflight[n] = &sync.WaitGroup{}
	}
}

// remove takes n out of the rotation and waits for its requests in flight.
func (e *entries) remove(n *cnode) {
	e.mu.Lock()
	e.nodes = slices.DeleteFunc(e.nodes, func(x *cnode) bool { return x == n })
	wg := e.inflight[n]
	e.mu.Unlock()
	if wg != nil {
		wg.Wait()
	}
}

// pick returns the next node round-robin and a done func to call when the
// request is over.
func (e *entries) pick() (*cnode, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.nodes[e.next%len(e.nodes)]
	e.next++
	wg := e.inflight[n]
	wg.Add(1)
	return n, wg.Done
}

// load is a run of creates (runLoad).
type load struct {
	tag     string
	total   int
	mu      sync.Mutex // guards results while the load runs
	results []createResult
	created atomic.Int64 // answered (any status)
	retried atomic.Int64 // creates sent again after a 504 (retry504)
	stop    atomic.Bool
	started time.Time
	elapsed time.Duration
	done    chan struct{}
}

// loadStall bounds how long a load may go without a single create being
// answered before the test gives up on it: the waits on a load are bounded
// by progress, not by a rate, so a slow machine only makes them longer.
// Each request is bounded by the HTTP client's timeout (30s), so a load
// whose nodes answer nothing at all (not even an error) for this long is
// stuck, not slow.
const loadStall = 60 * time.Second

// loadOption changes how runLoad creates.
type loadOption func(*loadConfig)

type loadConfig struct {
	sampleEvery int
	retry504    bool
}

// retry504 makes runLoad send a create that got 504 again, with the same
// id and body, as the API tells clients to (see runLoad). A loaded machine
// can hold a relayed create past the relay timeout; a test that needs
// every create acknowledged then gets it acknowledged a little later. One
// still 504 too close to its due time to be sent again is unsettled.
func retry504() loadOption {
	return func(c *loadConfig) { c.retry504 = true }
}

// sampleOwners makes runLoad read every k-th timer back through the node
// that created it (GET /timer/<id>, right after its 201) and keep the
// owner the answer names: a count of who owns what that needs no quiet
// moment in which every timer is created and none is due yet.
func sampleOwners(k int) loadOption {
	return func(c *loadConfig) { c.sampleEvery = k }
}

// runLoad creates total timers with workers concurrent clients through ents
// and returns at once. mk gives the i-th timer's body and due time (Unix ms,
// the at it sends); it is called right before the request is sent, so a
// due time it derives from time.Now() counts from the create. The id is
// tag-<i>, sent as x-timer-id so that even a timer whose create failed can
// be recognised if it arrives.
func runLoad(t testing.TB, ents *entries, tag string, total, workers int, mk func(i int) (map[string]any, int64), opts ...loadOption) *load {
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
	l := &load{tag: tag, total: total, results: make([]createResult, total), done: make(chan struct{}), started: time.Now()}
	// A test that fails half-way stops its load before its nodes go.
	t.Cleanup(func() {
		l.stop.Store(true)
		<-l.done
	})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !l.stop.Load() {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				id := fmt.Sprintf("%s-%d", tag, i)
				b, due := mk(i)
				n, done := ents.pick()
				r, err := n.try(http.MethodPost, "/timer", b, "x-timer-id", id)
				// A 504 (the owner did not answer in time: the create may
				// have been carried out) is retried as the API says: the
				// same id and body, until it is 201, or 409 (an earlier try
				// stored it). Only while the timer is well ahead of its due
				// time: one that may have fired could be created again.
				exists := false
				for tries := 1; cfg.retry504 && err == nil && r.Status == http.StatusGatewayTimeout && tries < 5 &&
					time.Now().Add(2*time.Second).UnixMilli() < due; tries++ {
					l.retried.Add(1)
					r, err = n.try(http.MethodPost, "/timer", b, "x-timer-id", id)
					exists = err == nil && r.Status == http.StatusConflict
				}
				res := createResult{ID: id, Due: due, Via: n.Name, Status: r.Status, Done: true, Answered: time.Now()}
				switch {
				case err != nil:
					res.Err = err
				case exists:
				case r.Status != http.StatusCreated:
					res.Err = fmt.Errorf("%s", r)
					res.Unsettled = cfg.retry504 && r.Status == http.StatusGatewayTimeout
				case r.Header.Get("Location") != "/timer/"+id:
					res.Err = fmt.Errorf("201 with Location %q, want /timer/%s", r.Header.Get("Location"), id)
				case cfg.sampleEvery > 0 && i%cfg.sampleEvery == 0:
					res.Sampled = true
					res.Owner, res.SampleErr = readOwner(n, id, due)
				}
				done()
				l.mu.Lock()
				l.results[i] = res
				l.mu.Unlock()
				l.created.Add(1)
			}
		}()
	}
	go func() {
		wg.Wait()
		l.elapsed = time.Since(l.started)
		close(l.done)
	}()
	return l
}

// readOwner reads timer id (due at due, Unix ms) through n and returns the
// node that owns it. A 404 that came back once the timer was due is no
// answer (it may have fired: ""), nor is a 504 still there after a few
// tries (the owner did not answer in time: a loaded machine); a 404
// before its due time is an error: an acknowledged timer that is not
// there.
func readOwner(n *cnode, id string, due int64) (string, error) {
	r, err := n.try(http.MethodGet, timerPath(id), nil)
	for tries := 1; err == nil && r.Status == http.StatusGatewayTimeout && tries < 5; tries++ {
		r, err = n.try(http.MethodGet, timerPath(id), nil)
	}
	answered := time.Now()
	switch {
	case err != nil:
		return "", fmt.Errorf("GET %s through %s after its 201: %w", id, n.Name, err)
	case r.Status == http.StatusNotFound && answered.UnixMilli() >= due:
		return "", nil
	case r.Status == http.StatusGatewayTimeout:
		return "", nil
	case r.Status != http.StatusOK:
		return "", fmt.Errorf("GET %s through %s after its 201, %v before its due time: %s", id, n.Name, time.UnixMilli(due).Sub(answered), r)
	}
	var info timerInfo
	if err := json.Unmarshal(r.Body, &info); err != nil {
		return "", fmt.Errorf("GET %s through %s: body %q: %w", id, n.Name, r.Body, err)
	}
	if info.Node == "" {
		return "", fmt.Errorf("GET %s through %s: no node in %s", id, n.Name, r.Body)
	}
	return info.Node, nil
}

// wait waits for the load to finish. It fails the test only when the load
// makes no progress for loadStall.
func (l *load) wait(t testing.TB) {
	t.Helper()
	l.waitCount(t, int64(l.total))
	// The last answer is counted before its worker exits; elapsed is set
	// once they all have (and is read by callers after wait: done orders
	// the two).
	select {
	case <-l.done:
	case <-time.After(loadStall):
		t.Fatalf("load %s: the workers did not finish within %v of the last answer", l.tag, loadStall)
	}
}

// waitCount waits until at least n creates were answered (or the load is
// over). It fails the test only when the load makes no progress for
// loadStall.
func (l *load) waitCount(t testing.TB, n int64) {
	t.Helper()
	l.waitCountUntil(t, n, time.Time{})
}

// waitCountUntil is waitCount that also gives up at deadline (zero: never)
// and reports whether the n creates were answered (or the load is over)
// by then. The load goes on either way.
func (l *load) waitCountUntil(t testing.TB, n int64, deadline time.Time) bool {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last, progress := l.created.Load(), time.Now()
	for {
		got := l.created.Load()
		if got >= n {
			return true
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return false
		}
		if got != last {
			last, progress = got, time.Now()
		}
		if time.Since(progress) >= loadStall {
			l.stop.Store(true)
			<-l.done
			t.Fatalf("load %s: stuck at %d of %d creates answered (waiting for %d): none answered in %v", l.tag, got, l.total, n, loadStall)
		}
		select {
		case <-l.done:
			return true
		case <-tick.C:
		}
	}
}

// owners counts the owners the sampled creates named (sampleOwners), and
// returns the sampling errors and how many samples had no answer (see
// readOwner).
func (l *load) owners() (byNode map[string]int, errs []error, unknown int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	byNode = map[string]int{}
	for _, r := range l.results {
		switch {
		case !r.Sampled:
		case r.SampleErr != nil:
			errs = append(errs, r.SampleErr)
		case r.Owner == "":
			unknown++
		default:
			byNode[r.Owner]++
		}
	}
	return byNode, errs, unknown
}

// ackedSoFar returns the timers answered 201 so far (id -> due).
func (l *load) ackedSoFar() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int64{}
	for _, r := range l.results {
		if r.Done && r.Err == nil {
			out[r.ID] = r.Due
		}
	}
	return out
}

// rate is creates per second over the whole load.
func (l *load) rate() float64 {
	return float64(l.created.Load()) / l.elapsed.Seconds()
}

// split returns the acknowledged (201) timers and the others that were
// attempted (id -> due), and a summary of the failures by entry node. An
// unsettled create (retry504) is among the others, not among the failures:
// a 504 is the API's "may have been carried out", so such a timer may
// arrive, at most once.
func (l *load) split() (acked, failed map[string]int64, failures map[string][]string) {
	acked, failed, failures = map[string]int64{}, map[string]int64{}, map[string][]string{}
	for _, r := range l.results {
		if !r.Done {
			continue
		}
		if r.Err == nil {
			acked[r.ID] = r.Due
			continue
		}
		failed[r.ID] = r.Due
		if !r.Unsettled {
			failures[r.Via] = append(failures[r.Via], fmt.Sprintf("%s: %v", r.ID, r.Err))
		}
	}
	return acked, failed, failures
}

// unsettled returns the ids of the unsettled creates (see createResult).
func (l *load) unsettled() []string {
	var ids []string
	for _, r := range l.results {
		if r.Unsettled {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// ---------------------------------------------------------------------------
// The delivery check

// waitArrivals waits until every timer of acked (id -> due) has called
// back at path, or d has passed and then deliverWait more without a new
// arrival there: deliveries that are still coming, however slowly, are
// waited for. It counts timers, not callbacks: a callback of a timer whose
// create failed (it may have been stored) or a repeat does not stand in
// for a missing one. It does not fail: the check that follows says what
// is missing.
func waitArrivals(s *sink, path string, acked map[string]int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	timer := time.NewTimer(d)
	defer timer.Stop()
	seen := map[string]bool{}
	read := -1 // arrivals at path looked at so far; -1 before the first look
	for {
		s.mu.Lock()
		idx := s.byPath[path]
		for _, i := range idx[max(read, 0):] {
			if id := s.all[i].ID(); hasKey(acked, id) {
				seen[id] = true
			}
		}
		progress := len(idx) > read
		read = len(idx)
		ch := s.notify
		s.mu.Unlock()
		if len(seen) == len(acked) {
			return true
		}
		if progress {
			deadline = later(deadline, time.Now().Add(deliverWait))
			timer.Reset(time.Until(deadline))
		}
		select {
		case <-ch:
		case <-timer.C:
			if !time.Now().Before(deadline) {
				return false
			}
			timer.Reset(time.Until(deadline))
		}
	}
}

func hasKey(m map[string]int64, k string) bool {
	_, ok := m[k]
	return ok
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// barriers creates one timer through each node, due after ms, and waits
// for all their callbacks: timers due before them have had their chance.
func barriers(t testing.TB, s *sink, nodes []*cnode, ms int) {
	t.Helper()
	var paths []string
	for _, n := range nodes {
		path := s.Path("barrier")
		b := body(s, path)
		b["timeout"] = ms
		n.createTimer(t, b)
		paths = append(paths, path)
	}
	for _, p := range paths {
		s.waitPath(t, p, time.Duration(ms)*time.Millisecond+deliverWait)
	}
}

// deliveryReport is what checkDeliveries measured.
type deliveryReport struct {
	Delivered      int
	MaybeDelivered int // timers whose create failed but that arrived anyway (at most once)
	Redelivered    int // timers due before a crash that arrived more than once
	P50, P99, Max  time.Duration
}

// checkDeliveries checks the arrivals at path against the timers: every id
// in acked arrived exactly once and not before its due time; an id in maybe
// (its create failed: it may or may not have been stored) arrived at most
// once and not early; nothing else arrived, at path or elsewhere (but
// barriers). Every problem is reported (up to a limit per kind) before the
// test fails.
func checkDeliveries(t testing.TB, s *sink, path string, acked, maybe map[string]int64) deliveryReport {
	t.Helper()
	return checkDeliveriesAcross(t, s, path, acked, maybe, time.Time{})
}

// checkDeliveriesAcross is checkDeliveries across a crash (kill -9) at
// crash: a timer due before it may have been delivered and not yet removed
// when its node died, and come again when the node restarts (at least once
// across a crash), so such a timer may arrive more than once; any other
// timer exactly once. A zero crash allows no repeat.
func checkDeliveriesAcross(t testing.TB, s *sink, path string, acked, maybe map[string]int64, crash time.Time) deliveryReport {
	t.Helper()
	var rep deliveryReport
	seen := map[string]int{}
	var late []time.Duration
	problems := map[string][]string{}
	add := func(kind, msg string) {
		if len(problems[kind]) < 10 {
			problems[kind] = append(problems[kind], msg)
		} else if len(problems[kind]) == 10 {
			problems[kind] = append(problems[kind], "…")
		}
	}
	counts := map[string]int{}
	for _, a := range s.Arrivals(path) {
		id := a.ID()
		seen[id]++
		due, ok := acked[id]
		if !ok {
			due, ok = maybe[id]
			if ok && seen[id] == 1 {
				rep.MaybeDelivered++
			}
		}
		if !ok {
			counts["unexpected"]++
			add("unexpected", fmt.Sprintf("%q at %s", id, a.At.Format(time.RFC3339Nano)))
			continue
		}
		if seen[id] > 1 && !crash.IsZero() && due <= crash.UnixMilli() {
			if seen[id] == 2 {
				rep.Redelivered++
			}
		} else if seen[id] > 1 {
			counts["duplicate"]++
			add("duplicate", fmt.Sprintf("%s (arrival #%d at %s)", id, seen[id], a.At.Format(time.RFC3339Nano)))
		}
		at := a.At.Round(0)
		if at.UnixNano() < due*int64(time.Millisecond) {
			counts["early"]++
			add("early", fmt.Sprintf("%s arrived %v before its due time %s", id,
				time.UnixMilli(due).Sub(at), time.UnixMilli(due).Format(time.RFC3339Nano)))
		}
		if _, ok := acked[id]; ok && seen[id] == 1 {
			late = append(late, at.Sub(time.UnixMilli(due)))
		}
	}
	for _, a := range s.All() {
		if a.Path != path && !strings.HasPrefix(a.Path, "/cb/barrier-") {
			counts["stray"]++
			add("stray", fmt.Sprintf("%s %s (timer %q)", a.Method, a.Path, a.ID()))
		}
	}
	missing := 0
	for id := range acked {
		if seen[id] == 0 {
			missing++
			add("missing", id)
		}
	}
	counts["missing"] = missing
	rep.Delivered = len(late)
	if len(late) > 0 {
		slices.Sort(late)
		rep.P50 = late[len(late)/2]
		rep.P99 = late[len(late)*99/100]
		rep.Max = late[len(late)-1]
	}
	for kind, list := range problems {
		t.Errorf("%d %s callbacks (of %d acknowledged timers), e.g.:\n  %s", counts[kind], kind, len(acked), strings.Join(list, "\n  "))
	}
	return rep
}

// missingOwners asks the live nodes (GET /timer/<id>) where the missing
// acknowledged timers are, for the failure report.
func missingOwners(t testing.TB, s *sink, path string, acked map[string]int64, live []*cnode) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range s.Arrivals(path) {
		seen[a.ID()] = true
	}
	shown := 0
	for id, due := range acked {
		if seen[id] || shown >= 10 {
			continue
		}
		shown++
		var where []string
		for _, n := range live {
			r, err := n.try(http.MethodGet, timerPath(id), nil)
			if err != nil {
				where = append(where, fmt.Sprintf("%s: %v", n.Name, err))
				continue
			}
			where = append(where, fmt.Sprintf("%s: %d %s", n.Name, r.Status, r.Body))
		}
		t.Logf("missing %s (due %s): %s", id, time.UnixMilli(due).Format(time.RFC3339Nano), strings.Join(where, "; "))
	}
}

// timerBody is a create body for the cluster tests: a POST callback to the
// sink's path, due at the absolute time at (Unix ms), data the index.
func timerBody(s *sink, path string, at int64, i int) map[string]any {
	return with(body(s, path), "timeout", remove, "at", at, "data", strconv.Itoa(i))
}

// nodeNames maps the nodes' test names to their ids, for logs.
func nodeNames(nodes []*cnode) map[string]string {
	out := map[string]string{}
	for _, n := range nodes {
		out[n.Name] = n.Node
	}
	return out
}
