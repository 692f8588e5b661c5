package main_test

// The fault-scenario runner: N real `skyring run` processes (the cluster
// harness of e2e_cluster_helpers_test.go), timers created through random
// live nodes while a schedule of faults is injected (kill -9, SIGTERM,
// SIGSTOP/SIGCONT, restarts, nodes started with the hidden --debug:* fault
// flags), then a check of every acknowledged timer over the callback sink.
//
// What the check holds every timer to:
//
//   - Delivered. A create answered 201 is acknowledged; so is one answered
//     409 after an earlier try of the same id got a 503, a 504 or no answer
//     (that try stored it). Every acknowledged timer must arrive. A create
//     that never got either is "maybe": it may arrive, at most once.
//   - Not early. Timers are relative ("timeout") unless the scenario says
//     Absolute. A relative timer is due timeout after the node that accepted
//     it stamped it, by that node's clock; that instant is never before the
//     test sent the create, so the check is arrival >= first send + timeout,
//     on the machine's clock, which every process shares. A clock-offset
//     node shifts its stamp and its reading alike, so this is also "not
//     early by the accepting node's clock". An absolute timer ("at") is
//     judged by the accepting node's clock: arrival + that node's
//     --debug:clock-offset >= at (with tries through several nodes, the
//     largest offset among them, so that only a sure early is reported).
//     The bound is conservative by the create's own latency, never wrong.
//   - Duplicates only across a crash. A second arrival of a timer is
//     explained only by a crash (kill -9) of a node that executed the timer
//     (by the execute events, when any were seen), that came at most
//     crashWindow after the previous arrival (or crashGrace before it: a
//     request sent just before the kill) and before this one: the delivery
//     was under way, or done and not yet recorded, when the node died (at
//     least once across a crash). Anything else is a duplicate, and so is a
//     repeat of a timer delivered long before the crash (its delivery should
//     have been recorded by then). When both arrivals carry the delivery
//     header x-skyring-fence, the later one must carry a higher fence; the
//     check is skipped for arrivals without the header.
//   - Nothing unexpected: no callback of a timer never created, none at
//     another path (barriers aside).
//
// The report lists lost, early and duplicate timers with the reasons the
// cluster gives (GET through the live nodes, the nodes' log lines about the
// id, the tries of its create), the faults with their times, and counts.
//
// Scenarios whose checks fail on main because of known bugs call knownBug:
// skipped, naming the bug, unless SKYRING_E2E_KNOWN_BUGS=1. The checks are
// never weakened to pass.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// crashGrace: a callback the node sent just before it was killed may
	// reach the sink this long after the kill.
	crashGrace = 250 * time.Millisecond
	// crashWindow: a delivery is recorded (delivered, on disk) within this
	// long of its callback's arrival, or it was not under way at a crash.
	crashWindow = 2 * time.Second
	// retryMargin: a create that failed is sent again only while its timer
	// is at least this far from its due time, so that a try that did store
	// it cannot have fired before the next try (which would create it
	// again, as a new generation).
	retryMargin = 2 * time.Second
	// fenceHeader is the delivery header that grows each time a timer's
	// owner changes or its node restarts.
	fenceHeader = "x-skyring-fence"
)

// knownBug skips a scenario that fails on main because of a known bug,
// unless SKYRING_E2E_KNOWN_BUGS=1 asks to run it anyway. Call it first
// thing in the scenario with the bug's story, and remove the call with
// the fix. (No scenario is a known bug at the moment: the slow-disk
// hand-off, the clock skew and the stale relayed create were, until the
// acknowledged hand-off and the skew-proof relative timers.)
func knownBug(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("SKYRING_E2E_KNOWN_BUGS") == "" {
		t.Skipf("known bug: %s (SKYRING_E2E_KNOWN_BUGS=1 runs it)", why)
	}
	t.Logf("known bug, run anyway (SKYRING_E2E_KNOWN_BUGS is set): %s", why)
}

// faultScenario is one run of the runner.
type faultScenario struct {
	Nodes    int              // nodes started (and converged) before the load
	Slots    int              // channel-port slots; default Nodes (more for nodes a fault starts)
	NodeArgs map[int][]string // extra `skyring run` args of node i (n<i>)
	// Args are extra `skyring run` args of every node, before NodeArgs
	// (those a fault starts too): e.g. the storage backend, to run the
	// scenarios on another one (see withBackend).
	Args []string
	// Together starts the first Nodes nodes at once and then waits for
	// each: nodes that cannot be ready alone (an R3 JetStream store waits
	// for a quorum of servers) need it.
	Together bool
	Race     bool             // run the race-built binary; default heavyBin (see there)
	Timers   int              // timers created
	Spread   time.Duration    // the creates are paced evenly over this long
	Delay    [2]time.Duration // each timer is due a random time in [Delay[0], Delay[1]] after its create
	Absolute bool             // create with "at" instead of "timeout"
	Workers  int              // concurrent creators; default 32
	Entry    []int            // nodes creates go through (default: the first Nodes); a fault takes a node out while it is down
	Faults   []faultStep      // run in order, each not before its At, on the test goroutine
	Slack    time.Duration    // extra wait for deliveries past the last due time; default deliverWait
	Seed     uint64           // random seed; 0 picks one (logged)
}

// faultStep is one fault (or other action) of a schedule.
type faultStep struct {
	At   time.Duration // not before this long after the load started
	Name string
	Do   func(r *faultRun)
}

// faultEvent is what was done to a node, and when.
type faultEvent struct {
	At    time.Time
	What  string
	Node  string
	Crash bool // a delivery under way may come again (kill -9)
}

// ftimer is one timer of the load and what its create got.
type ftimer struct {
	ID        string
	Delay     time.Duration
	At        int64 // Absolute: the at sent (Unix ms)
	FirstSent time.Time
	Tries     []ftry
	State     string // "acked", "maybe", "failed"
	Exists    bool   // acknowledged by a 409 after a try without an answer
	Err       string // failed: the answer that was not 201, 409, 503 or 504
}

// ftry is one try of a create.
type ftry struct {
	Via    string
	Sent   time.Time
	Took   time.Duration
	Status int    // 0: no answer
	Err    string // transport error or reason
}

func (tr ftry) String() string {
	if tr.Status == 0 {
		return fmt.Sprintf("%s: %s", tr.Via, tr.Err)
	}
	if tr.Err != "" {
		return fmt.Sprintf("%s: %d %q (%v)", tr.Via, tr.Status, tr.Err, tr.Took.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s: %d (%v)", tr.Via, tr.Status, tr.Took.Round(time.Millisecond))
}

// faultRun is a running scenario.
type faultRun struct {
	t     *testing.T
	sc    faultScenario
	c     *cluster
	s     *sink
	path  string
	start time.Time

	ev *events // execute and evict events, through any node

	mu    sync.Mutex
	nodes []*cnode // r.c.nodes as the load goroutines may read them
	rng   *rand.Rand
	entry map[*cnode]bool // may take creates
	down  map[*cnode]bool // taken out by a fault
	// notFound: 404s probeTransfer got for acknowledged timers not yet due.
	notFound []string
	offsets  map[string]time.Duration
	events   []faultEvent
	timers   []*ftimer

	loadDone chan struct{}
	answered atomic.Int64
}

// runFaults runs sc and checks every timer; the checks fail t. It returns
// the run for scenario-specific checks and the report.
func runFaults(t *testing.T, sc faultScenario) (*faultRun, faultReport) {
	t.Helper()
	sc.Slots = max(sc.Slots, sc.Nodes)
	sc.Workers = cmp.Or(sc.Workers, 32)
	sc.Slack = cmp.Or(sc.Slack, deliverWait)
	if sc.Seed == 0 {
		sc.Seed = rand.Uint64()
	}
	t.Logf("seed %d", sc.Seed)
	bin := skyringBin
	if !sc.Race {
		bin = heavyBin(t)
	}
	r := &faultRun{
		t: t, sc: sc, s: newSink(t), path: "/cb/fault",
		rng:     rand.New(rand.NewPCG(sc.Seed, 0x5ca1ab1e)),
		entry:   map[*cnode]bool{},
		down:    map[*cnode]bool{},
		offsets: map[string]time.Duration{},
	}
	r.c = newEmbeddedCluster(t, bin, sc.Slots)
	r.c.args = append(r.c.args, sc.Args...)
	var nodes []*cnode
	if sc.Together {
		var extras [][]string
		for i := range sc.Nodes {
			extras = append(extras, sc.NodeArgs[i])
		}
		nodes = r.startNodesTogether(extras...)
	} else {
		for i := range sc.Nodes {
			nodes = append(nodes, r.startNode(sc.NodeArgs[i]...))
		}
	}
	d := r.c.waitConverged(nodes, convergeWait)
	t.Logf("%d nodes converged %v after the last one was ready", sc.Nodes, d.Round(time.Millisecond))
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.NATSURL)
	}
	r.ev = subscribeEvents(t, strings.Join(urls, ","), "skyring.events.execute", "skyring.events.evict")
	entry := sc.Entry
	if entry == nil {
		for i := range sc.Nodes {
			entry = append(entry, i)
		}
	}
	for _, i := range entry {
		r.entry[r.node(i)] = true
	}

	r.start = time.Now()
	r.runLoad()
	for _, f := range sc.Faults {
		if wait := time.Until(r.start.Add(f.At)); wait > 0 {
			time.Sleep(wait) // the schedule's pace, not a synchronisation
		}
		t.Logf("fault at %v: %s", time.Since(r.start).Round(time.Millisecond), f.Name)
		f.Do(r)
		if t.Failed() {
			break
		}
	}
	r.waitLoad()
	if t.Failed() {
		return r, faultReport{}
	}
	for _, n := range r.all() {
		if !n.Running() {
			t.Logf("%s is down at the end: the timers it stored cannot be delivered", n.Name)
		}
	}

	acked := r.ackedDue()
	var last time.Time
	for _, ft := range r.timers {
		if ft != nil {
			last = later(last, r.dueReal(ft))
		}
	}
	complete := waitArrivals(r.s, r.path, acked, time.Until(last)+sc.Slack)
	r.barriers()
	rep := r.check()
	rep.Complete = complete
	r.judge(rep)
	return r, rep
}

// startNode starts the next node of the cluster with extra args, and
// notes its clock offset.
func (r *faultRun) startNode(extra ...string) *cnode {
	r.t.Helper()
	n := r.c.start(extra...)
	r.mu.Lock()
	r.nodes = append(r.nodes, n)
	r.mu.Unlock()
	if v, ok := flagValue(extra, "debug:clock-offset"); ok {
		d, err := time.ParseDuration(v)
		require.NoError(r.t, err)
		r.mu.Lock()
		r.offsets[n.Name] = d
		r.mu.Unlock()
	}
	return n
}

// startNodesTogether starts the next nodes at once (cluster.startTogether),
// node k with extras[k].
func (r *faultRun) startNodesTogether(extras ...[]string) []*cnode {
	r.t.Helper()
	ns := r.c.startTogether(extras...)
	r.mu.Lock()
	r.nodes = append(r.nodes, ns...)
	r.mu.Unlock()
	for k, n := range ns {
		if v, ok := flagValue(extras[k], "debug:clock-offset"); ok {
			d, err := time.ParseDuration(v)
			require.NoError(r.t, err)
			r.mu.Lock()
			r.offsets[n.Name] = d
			r.mu.Unlock()
		}
	}
	return ns
}

// node returns n<i>.
func (r *faultRun) node(i int) *cnode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[i]
}

// all returns every node started so far.
func (r *faultRun) all() []*cnode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.nodes)
}

// live returns the nodes running and not paused.
func (r *faultRun) live() []*cnode {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*cnode
	for _, n := range r.nodes {
		if n.Running() && !r.down[n] {
			out = append(out, n)
		}
	}
	return out
}

// pick returns a random entry node that is up, or nil.
func (r *faultRun) pick() *cnode {
	r.mu.Lock()
	defer r.mu.Unlock()
	var up []*cnode
	for _, n := range r.nodes {
		if r.entry[n] && !r.down[n] {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return nil
	}
	return up[r.rng.IntN(len(up))]
}

func (r *faultRun) setDown(n *cnode, down bool) {
	r.mu.Lock()
	r.down[n] = down
	r.mu.Unlock()
}

func (r *faultRun) event(n *cnode, what string, crash bool) {
	r.mu.Lock()
	r.events = append(r.events, faultEvent{At: time.Now(), What: what, Node: n.Name, Crash: crash})
	r.mu.Unlock()
}

// intn is a random int in [0, n) from the run's seed.
func (r *faultRun) intn(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(n)
}

// ---------------------------------------------------------------------------
// Faults

// signal sends sig to the current life of p without waiting for anything.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("signal %v before start", sig)
	}
	return cmd.Process.Signal(sig)
}

// kill9 kills node i with SIGKILL: a crash.
func kill9(i int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		n := r.node(i)
		r.setDown(n, true)
		n.Kill()
		r.event(n, "kill -9", true)
	}
}

// restart starts node i again on its data directory.
func restart(i int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		n := r.node(i)
		r.c.restart(n)
		r.event(n, "restarted (ready)", false)
		r.setDown(n, false)
	}
}

// sigterm stops node i gracefully (it must exit 0).
func sigterm(i int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		n := r.node(i)
		r.setDown(n, true)
		r.event(n, "SIGTERM", false)
		start := time.Now()
		n.Stop()
		r.event(n, "exited 0", false)
		r.t.Logf("%s stopped in %v", n.Name, time.Since(start).Round(time.Millisecond))
	}
}

// sigtermTogether sends SIGTERM to the nodes at the same moment and waits
// until each has exited 0.
func sigtermTogether(is ...int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		var ns []*cnode
		for _, i := range is {
			n := r.node(i)
			ns = append(ns, n)
			r.setDown(n, true)
		}
		start := time.Now()
		for _, n := range ns {
			require.NoError(r.t, n.signal(syscall.SIGTERM))
			r.event(n, "SIGTERM (together)", false)
		}
		for _, n := range ns {
			n.mu.Lock()
			exited := n.exited
			n.mu.Unlock()
			select {
			case <-exited:
			case <-time.After(stopTimeout):
				r.t.Fatalf("%s did not exit within %v of SIGTERM", n.Name, stopTimeout)
			}
			require.Equalf(r.t, 0, exitCode(n.exitErr()), "%s: exit code after SIGTERM (%v)", n.Name, n.exitErr())
			r.event(n, "exited 0", false)
			r.t.Logf("%s exited 0 %v after the SIGTERM", n.Name, time.Since(start).Round(time.Millisecond))
		}
	}
}

// pause stops node i with SIGSTOP for d, then resumes it with SIGCONT.
func pause(i int, d time.Duration) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		n := r.node(i)
		r.setDown(n, true)
		require.NoError(r.t, n.signal(syscall.SIGSTOP))
		r.event(n, "SIGSTOP", false)
		time.Sleep(d) // the length of the fault
		require.NoError(r.t, n.signal(syscall.SIGCONT))
		r.event(n, "SIGCONT", false)
		r.setDown(n, false)
	}
}

// killRestart kills node i with SIGKILL and starts it again at once: back
// within the member timeout.
func killRestart(i int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		kill9(i)(r)
		restart(i)(r)
		back := time.Since(r.lastEvent(r.node(i), "kill -9"))
		r.t.Logf("%s back %v after the kill (member timeout %s)", r.node(i).Name, back.Round(time.Millisecond), memberTimeout())
	}
}

// memberTimeout is the --member:timeout of the test clusters.
func memberTimeout() string {
	v, _ := flagValue(fastMembership, "member:timeout")
	return v
}

// stopRestart stops node i with SIGTERM and starts it again at once.
func stopRestart(i int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		sigterm(i)(r)
		restart(i)(r)
	}
}

// awaitMembers waits until nodes is lists exactly each other.
func awaitMembers(is ...int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		var ns []*cnode
		for _, i := range is {
			ns = append(ns, r.node(i))
		}
		d := r.c.waitConverged(ns, convergeWait)
		r.t.Logf("%d members converged in %v", len(ns), d.Round(time.Millisecond))
	}
}

// awaitLoad waits until every create was answered.
func awaitLoad(r *faultRun) { r.waitLoad() }

func (r *faultRun) lastEvent(n *cnode, what string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if e := r.events[i]; e.Node == n.Name && e.What == what {
			return e.At
		}
	}
	return time.Time{}
}

// ---------------------------------------------------------------------------
// Load

// runLoad starts the creates in the background: Timers of them, paced over
// Spread, each through a random entry node that is up.
func (r *faultRun) runLoad() {
	sc := r.sc
	r.timers = make([]*ftimer, sc.Timers)
	delays := make([]time.Duration, sc.Timers)
	for i := range delays {
		delays[i] = sc.Delay[0]
		if span := sc.Delay[1] - sc.Delay[0]; span > 0 {
			delays[i] += time.Duration(r.rng.Int64N(int64(span)))
		}
		delays[i] = delays[i].Round(time.Millisecond)
	}
	r.loadDone = make(chan struct{})
	stop := make(chan struct{})
	r.t.Cleanup(func() {
		close(stop)
		<-r.loadDone
	})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range sc.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= sc.Timers {
					return
				}
				slot := r.start.Add(time.Duration(int64(sc.Spread) * int64(i) / int64(sc.Timers)))
				select {
				case <-time.After(time.Until(slot)):
				case <-stop:
					return
				}
				ft := r.create(fmt.Sprintf("fault-%d", i), delays[i], stop)
				r.mu.Lock()
				r.timers[i] = ft
				r.mu.Unlock()
				r.answered.Add(1)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(r.loadDone)
	}()
}

// waitLoad waits until every create got its final answer.
func (r *faultRun) waitLoad() {
	r.t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, progress := r.answered.Load(), time.Now()
	for {
		select {
		case <-r.loadDone:
			return
		case <-tick.C:
		}
		if got := r.answered.Load(); got != last {
			last, progress = got, time.Now()
		}
		if time.Since(progress) > loadStall {
			r.t.Fatalf("load stuck at %d of %d creates answered for %v", last, r.sc.Timers, loadStall)
		}
	}
}

// create creates one timer, sending it again (same id and body, through
// a random node that is up) after a 503, a 504 or no answer, while it is
// more than retryMargin from its due time.
func (r *faultRun) create(id string, delay time.Duration, stop chan struct{}) *ftimer {
	ft := &ftimer{ID: id, Delay: delay, FirstSent: time.Now()}
	b := map[string]any{
		"data":     id,
		"callback": map[string]any{"transport": "http", "method": "post", "uri": r.s.URL(r.path)},
	}
	if r.sc.Absolute {
		ft.At = ft.FirstSent.Add(delay).UnixMilli()
		b["at"] = ft.At
	} else {
		b["timeout"] = delay.Milliseconds()
	}
	due := ft.FirstSent.Add(delay)
	unanswered := false
	for attempt := 1; ; attempt++ {
		n := r.pick()
		if n != nil {
			sent := time.Now()
			res, err := n.try(http.MethodPost, "/timer", b, "x-timer-id", id)
			tr := ftry{Via: n.Name, Sent: sent, Took: time.Since(sent)}
			if err != nil {
				tr.Err = err.Error()
			} else {
				tr.Status, tr.Err = res.Status, res.Reason()
			}
			ft.Tries = append(ft.Tries, tr)
			switch {
			case err == nil && res.Status == http.StatusCreated:
				ft.State = "acked"
				if loc := res.Header.Get("Location"); loc != "/timer/"+id {
					ft.State, ft.Err = "failed", fmt.Sprintf("201 with Location %q", loc)
				}
				return ft
			case err == nil && res.Status == http.StatusConflict && unanswered:
				ft.State, ft.Exists = "acked", true
				return ft
			case err != nil || res.Status == http.StatusServiceUnavailable || res.Status == http.StatusGatewayTimeout:
				unanswered = true
			default:
				ft.State, ft.Err = "failed", res.String()
				return ft
			}
		}
		if !time.Now().Add(retryMargin).Before(due) || attempt >= 20 {
			if unanswered {
				ft.State = "maybe"
			} else {
				ft.State, ft.Err = "failed", "no entry node up"
			}
			return ft
		}
		select {
		case <-time.After(time.Duration(min(attempt, 5)) * 50 * time.Millisecond):
		case <-stop:
			ft.State = "maybe"
			return ft
		}
	}
}

// dueReal is the earliest instant, on the machine's clock, at which the
// timer may arrive without being early by the clock of the node that
// accepted it (see the file comment).
func (r *faultRun) dueReal(ft *ftimer) time.Time {
	if !r.sc.Absolute {
		return ft.FirstSent.Add(ft.Delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var off time.Duration
	for i, tr := range ft.Tries {
		if o := r.offsets[tr.Via]; i == 0 || o > off {
			off = o
		}
	}
	return time.UnixMilli(ft.At).Add(-off)
}

// ackedDue returns the acknowledged timers (id -> due, Unix ms).
func (r *faultRun) ackedDue() map[string]int64 {
	out := map[string]int64{}
	for _, ft := range r.timers {
		if ft != nil && ft.State == "acked" {
			out[ft.ID] = r.dueReal(ft).UnixMilli()
		}
	}
	return out
}

// barriers creates short timers through every live entry node and waits
// until one through each has arrived: what was due before has had its
// chance. Three per node, with distinct ids (so owners): one owned by a
// node that cannot take it at once (a slow disk) does not hold the check
// up; the barrier paths are not judged.
func (r *faultRun) barriers() {
	var groups [][]string
	for _, n := range r.live() {
		if !r.entry[n] {
			continue
		}
		var paths []string
		for range 3 {
			path := r.s.Path("barrier")
			paths = append(paths, path)
			b := body(r.s, path)
			b["timeout"] = 300
			// Not waited for: one the owner holds up answers late (or
			// fails when the node goes at the end of the test).
			go func() { _, _ = n.try(http.MethodPost, "/timer", b) }()
		}
		groups = append(groups, paths)
	}
	arrived := func() bool {
		for _, g := range groups {
			if !slices.ContainsFunc(g, func(p string) bool { return len(r.s.byPath[p]) > 0 }) {
				return false
			}
		}
		return true
	}
	deadline := time.NewTimer(deliverWait)
	defer deadline.Stop()
	for {
		r.s.mu.Lock()
		ok, ch := arrived(), r.s.notify
		r.s.mu.Unlock()
		if ok {
			break
		}
		select {
		case <-ch:
			continue
		case <-deadline.C:
			r.t.Logf("barriers: not one through every node arrived within %v", deliverWait)
		}
		break
	}
}

// ---------------------------------------------------------------------------
// The check

// faultReport is what the check found.
type faultReport struct {
	Acked, Maybe, Failed int
	Exists               int // acknowledged by a 409 after a try without an answer
	Retried              int // timers whose create took more than one try
	Delivered            int // acknowledged timers that arrived
	MaybeDelivered       int
	Complete             bool // every acknowledged timer arrived before the barriers

	Lost, Early, Duplicates, Explained, Fences, Unexpected, CreateErrors []string
	Fenced                                                               int // arrivals with x-skyring-fence
	// NotFound: GETs answered 404 for an acknowledged timer not yet due
	// (probeTransfer); Cancelled: timers a DELETE answered 202 for.
	NotFound  []string
	Cancelled int

	P50, P99, Max time.Duration // lateness of the first arrival of acknowledged timers
	CrashGap      time.Duration // longest time from an arrival to the crash that explains its repeat
}

func (r *faultRun) crashes() []faultEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []faultEvent
	for _, e := range r.events {
		if e.Crash {
			out = append(out, e)
		}
	}
	return out
}

// check judges every arrival at the run's path against the timers.
func (r *faultRun) check() faultReport {
	var rep faultReport
	byID := map[string]*ftimer{}
	for _, ft := range r.timers {
		if ft == nil {
			continue
		}
		byID[ft.ID] = ft
		switch ft.State {
		case "cancelled":
			rep.Cancelled++
		case "acked":
			rep.Acked++
		case "maybe":
			rep.Maybe++
		default:
			rep.Failed++
			rep.CreateErrors = append(rep.CreateErrors, fmt.Sprintf("%s: %s; tries: %s", ft.ID, ft.Err, r.tries(ft)))
		}
		if ft.Exists {
			rep.Exists++
		}
		if len(ft.Tries) > 1 {
			rep.Retried++
		}
	}
	crashes := r.crashes()
	r.ev.mu.Lock()
	evs := map[string][]event{}
	for _, e := range r.ev.list {
		evs[e.Timer] = append(evs[e.Timer], e)
	}
	r.ev.mu.Unlock()
	arrivals := map[string][]arrival{}
	for _, a := range r.s.Arrivals(r.path) {
		arrivals[a.ID()] = append(arrivals[a.ID()], a)
	}
	var late []time.Duration
	for id, as := range arrivals {
		ft := byID[id]
		if ft == nil || ft.State == "failed" || ft.State == "cancelled" {
			rep.Unexpected = append(rep.Unexpected, fmt.Sprintf("%q (%s) arrived %d times, first at %s", id, stateOf(ft), len(as), r.rel(as[0].At)))
			continue
		}
		due := r.dueReal(ft)
		if ft.State == "acked" {
			rep.Delivered++
			late = append(late, as[0].At.Round(0).Sub(due))
		} else {
			rep.MaybeDelivered++
		}
		for k, a := range as {
			fence := a.Header.Get(fenceHeader)
			if fence != "" {
				rep.Fenced++
			}
			if at := a.At.Round(0); at.Before(due) {
				rep.Early = append(rep.Early, fmt.Sprintf("%s: arrival #%d at %s is %v before its due time %s (%s, timeout %v, fence %q); tries: %s",
					id, k+1, r.rel(at), due.Sub(at).Round(time.Millisecond), r.rel(due), ft.State, ft.Delay, fence, r.tries(ft)))
			}
			if k == 0 {
				continue
			}
			prev := as[k-1]
			if pf, err1 := parseFence(prev); err1 == nil && pf >= 0 {
				if cf, err2 := parseFence(a); err2 == nil && cf >= 0 && cf <= pf {
					rep.Fences = append(rep.Fences, fmt.Sprintf("%s: arrival #%d carries fence %d, not above the %d of arrival #%d", id, k+1, cf, pf, k))
				}
			}
			for _, x := range []arrival{prev, a} {
				if _, err := parseFence(x); err != nil {
					rep.Fences = append(rep.Fences, fmt.Sprintf("%s: %v", id, err))
				}
			}
			line := fmt.Sprintf("%s: arrival #%d at %s after #%d at %s (due %s, attempts %q, %q, fences %q, %q; %s)",
				id, k+1, r.rel(a.At), k, r.rel(prev.At), r.rel(due), prev.Header.Get("x-skyring-attempt"), a.Header.Get("x-skyring-attempt"),
				prev.Header.Get(fenceHeader), fence, r.story(evs[id]))
			if c, ok := explainedBy(crashes, r.executors(evs[id]), prev.At, a.At); ok {
				rep.Explained = append(rep.Explained, line+fmt.Sprintf(": across the kill -9 of %s at %s, %v after #%d", c.Node, r.rel(c.At), c.At.Sub(prev.At).Round(time.Millisecond), k))
				rep.CrashGap = max(rep.CrashGap, c.At.Sub(prev.At))
			} else {
				rep.Duplicates = append(rep.Duplicates, line+"; "+r.nearest(prev.At)+"; tries: "+r.tries(ft))
			}
		}
	}
	for _, a := range r.s.All() {
		if a.Path != r.path && !strings.HasPrefix(a.Path, "/cb/barrier-") {
			rep.Unexpected = append(rep.Unexpected, fmt.Sprintf("%s %s (timer %q)", a.Method, a.Path, a.ID()))
		}
	}
	for _, ft := range r.timers {
		if ft != nil && ft.State == "acked" && len(arrivals[ft.ID]) == 0 {
			rep.Lost = append(rep.Lost, ft.ID)
		}
	}
	sort.Strings(rep.Lost)
	if len(late) > 0 {
		slices.Sort(late)
		rep.P50, rep.P99, rep.Max = late[len(late)/2], late[len(late)*99/100], late[len(late)-1]
	}
	return rep
}

// executors returns the names of the nodes that executed a timer by its
// events, nil when none was seen.
func (r *faultRun) executors(evs []event) map[string]bool {
	var out map[string]bool
	for _, e := range evs {
		if e.Type != "execute" {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		for _, n := range r.all() {
			if n.Node == e.Node {
				out[n.Name] = true
			}
		}
	}
	return out
}

// story tells a timer's execute and evict events: which node delivered
// it, and where it was handed.
func (r *faultRun) story(evs []event) string {
	names := map[string]string{}
	for _, n := range r.all() {
		names[n.Node] = n.Name
	}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id
	}
	var parts []string
	for _, e := range evs {
		switch e.Type {
		case "execute":
			parts = append(parts, fmt.Sprintf("executed by %s (attempt %v)", name(e.Node), e.Fields["attempt"]))
		case "evict":
			to, _ := e.Fields["to"].(string)
			parts = append(parts, fmt.Sprintf("handed by %s to %s", name(e.Node), name(to)))
		}
	}
	if len(parts) == 0 {
		return "no execute or evict event seen"
	}
	return strings.Join(parts, ", ")
}

// parseFence reads the fence of a, -1 when it has none.
func parseFence(a arrival) (int64, error) {
	v := a.Header.Get(fenceHeader)
	if v == "" {
		return -1, nil
	}
	f, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return -1, fmt.Errorf("arrival at %s: %s %q is not a number", a.At.Format(time.RFC3339Nano), fenceHeader, v)
	}
	return int64(f), nil
}

// explainedBy finds the crash that explains a repeat at cur of an arrival
// at prev: of one of executors (any node when nil), at most crashWindow
// after prev (or crashGrace before it), before cur.
func explainedBy(crashes []faultEvent, executors map[string]bool, prev, cur time.Time) (faultEvent, bool) {
	for _, c := range crashes {
		if executors != nil && !executors[c.Node] {
			continue
		}
		if !prev.After(c.At.Add(crashGrace)) && !prev.Before(c.At.Add(-crashWindow)) && cur.After(c.At) {
			return c, true
		}
	}
	return faultEvent{}, false
}

// nearest names the fault event closest to at.
func (r *faultRun) nearest(at time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, bestD := "", time.Duration(1<<62)
	for _, e := range r.events {
		d := e.At.Sub(at)
		if d < 0 {
			d = -d
		}
		if d < bestD {
			best, bestD = fmt.Sprintf("nearest fault: %s %s at %s", e.Node, e.What, r.rel(e.At)), d
		}
	}
	if best == "" {
		return "no fault"
	}
	return best
}

// rel formats t as an offset from the load's start.
func (r *faultRun) rel(t time.Time) string {
	return fmt.Sprintf("t+%v", t.Round(0).Sub(r.start).Round(time.Millisecond))
}

func (r *faultRun) tries(ft *ftimer) string {
	parts := make([]string, len(ft.Tries))
	for i, tr := range ft.Tries {
		parts[i] = r.rel(tr.Sent) + " " + tr.String()
	}
	return strings.Join(parts, ", ")
}

// judge fails the test for what the report found, with reasons, and logs
// the run.
func (r *faultRun) judge(rep faultReport) {
	t := r.t
	t.Helper()
	r.mu.Lock()
	var evs []string
	for _, e := range r.events {
		evs = append(evs, fmt.Sprintf("%s %s %s", r.rel(e.At), e.Node, e.What))
	}
	r.mu.Unlock()
	t.Logf("faults: %s", strings.Join(evs, "; "))
	t.Logf("timers: %d acknowledged (%d by a 409 after a try without an answer), %d maybe, %d failed, %d retried; "+
		"delivered %d acknowledged and %d maybe; lost %d, early %d, duplicates %d unexplained + %d across a crash, fence errors %d, unexpected %d; "+
		"%d arrivals with %s; lateness p50 %v, p99 %v, max %v; longest arrival-to-crash of an explained duplicate %v",
		rep.Acked, rep.Exists, rep.Maybe, rep.Failed, rep.Retried, rep.Delivered, rep.MaybeDelivered,
		len(rep.Lost), len(rep.Early), len(rep.Duplicates), len(rep.Explained), len(rep.Fences), len(rep.Unexpected),
		rep.Fenced, fenceHeader, rep.P50, rep.P99, rep.Max, rep.CrashGap.Round(time.Millisecond))
	show := func(list []string) string {
		return strings.Join(list[:min(len(list), 10)], "\n  ")
	}
	if len(rep.Explained) > 0 {
		t.Logf("%d duplicates explained by a crash, e.g.:\n  %s", len(rep.Explained), show(rep.Explained))
	}
	r.mu.Lock()
	rep.NotFound = append(rep.NotFound, r.notFound...)
	r.mu.Unlock()
	if len(rep.NotFound) > 0 {
		t.Errorf("%d GETs of acknowledged timers not yet due answered 404, e.g.:\n  %s", len(rep.NotFound), show(rep.NotFound))
	}
	if rep.Cancelled > 0 {
		t.Logf("%d timers cancelled (202) during the run; none may arrive", rep.Cancelled)
	}
	if len(rep.CreateErrors) > 0 {
		t.Errorf("%d creates answered neither 201, 409, 503 nor 504, e.g.:\n  %s", len(rep.CreateErrors), show(rep.CreateErrors))
	}
	if len(rep.Lost) > 0 {
		var why []string
		for _, id := range rep.Lost[:min(len(rep.Lost), 10)] {
			why = append(why, id+": "+r.whyLost(id))
		}
		t.Errorf("%d acknowledged timers lost (of %d), e.g.:\n  %s", len(rep.Lost), rep.Acked, show(why))
	}
	if len(rep.Early) > 0 {
		t.Errorf("%d early arrivals, e.g.:\n  %s", len(rep.Early), show(rep.Early))
	}
	if len(rep.Duplicates) > 0 {
		t.Errorf("%d duplicate arrivals not explained by a crash, e.g.:\n  %s", len(rep.Duplicates), show(rep.Duplicates))
	}
	if len(rep.Fences) > 0 {
		t.Errorf("%d fence errors, e.g.:\n  %s", len(rep.Fences), show(rep.Fences))
	}
	if len(rep.Unexpected) > 0 {
		t.Errorf("%d unexpected arrivals, e.g.:\n  %s", len(rep.Unexpected), show(rep.Unexpected))
	}
}

// whyLost says what the cluster tells about a timer that never arrived:
// its create's tries, GET through each live node, and the nodes' log
// lines about it.
func (r *faultRun) whyLost(id string) string {
	var why []string
	for _, ft := range r.timers {
		if ft != nil && ft.ID == id {
			why = append(why, fmt.Sprintf("due %s, created through %s", r.rel(r.dueReal(ft)), r.tries(ft)))
		}
	}
	r.ev.mu.Lock()
	var evs []event
	for _, e := range r.ev.list {
		if e.Timer == id {
			evs = append(evs, e)
		}
	}
	r.ev.mu.Unlock()
	why = append(why, r.story(evs))
	for _, n := range r.live() {
		res, err := n.try(http.MethodGet, timerPath(id), nil)
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("GET via %s: %v", n.Name, err))
		case res.Status == http.StatusOK:
			var info timerInfo
			_ = json.Unmarshal(res.Body, &info)
			why = append(why, fmt.Sprintf("GET via %s: 200 state=%s node=%s attempts=%d last_error=%q", n.Name, info.State, info.Node, info.Attempts, info.LastError))
		default:
			why = append(why, fmt.Sprintf("GET via %s: %d", n.Name, res.Status))
		}
	}
	for _, n := range r.all() {
		k := 0
		for _, line := range strings.Split(n.Output(), "\n") {
			if strings.Contains(line, "timer_id="+id+" ") || strings.HasSuffix(line, "timer_id="+id) {
				if k++; k <= 3 {
					why = append(why, fmt.Sprintf("%s log: %s", n.Name, strings.TrimSpace(line)))
				}
			}
		}
	}
	return strings.Join(why, "; ")
}

// clusterTimerSum sums the own timer counts GET /cluster shows on nodes.
func clusterTimerSum(t testing.TB, nodes []*cnode) (int, map[string]int) {
	t.Helper()
	counts := timerCounts(t, nodes)
	sum := 0
	for _, c := range counts {
		sum += c
	}
	return sum, counts
}

func stateOf(ft *ftimer) string {
	if ft == nil {
		return "never created"
	}
	return ft.State
}

// probeTransfer, for d, asks every 50 ms, through a random live node, GET
// of a random acknowledged timer not due for another 2 s: a timer that
// exists must never answer 404, whatever is moving where (a 504, "retry",
// is allowed). It also cancels up to cancels of them (DELETE); each one
// answered 202 must never arrive (check reports it as unexpected). The
// load must be over (awaitLoad) before it runs.
func probeTransfer(d time.Duration, cancels int) func(r *faultRun) {
	return func(r *faultRun) {
		r.t.Helper()
		var pool []*ftimer
		for _, ft := range r.timers {
			if ft != nil && ft.State == "acked" {
				pool = append(pool, ft)
			}
		}
		require.NotEmpty(r.t, pool)
		gets, cancelled := 0, 0
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) { // a probe every 50 ms
			ft := pool[r.intn(len(pool))]
			if ft.State != "acked" || time.Until(r.dueReal(ft)) < 2*time.Second {
				continue
			}
			n := r.pick()
			if n == nil {
				continue
			}
			if cancelled < cancels && r.intn(4) == 0 {
				res, err := n.try(http.MethodDelete, timerPath(ft.ID), nil)
				switch {
				case err == nil && res.Status == http.StatusAccepted:
					ft.State = "cancelled"
					cancelled++
				case err == nil && res.Status == http.StatusNotFound:
					r.mu.Lock()
					r.notFound = append(r.notFound, fmt.Sprintf("DELETE %s through %s at %s: 404", ft.ID, n.Name, r.rel(time.Now())))
					r.mu.Unlock()
				default:
					// No answer, or a 504: the cancel may have been carried
					// out. The timer may arrive or not.
					ft.State = "maybe"
				}
				continue
			}
			res, err := n.try(http.MethodGet, timerPath(ft.ID), nil)
			if err != nil {
				continue
			}
			gets++
			if res.Status == http.StatusNotFound {
				r.mu.Lock()
				r.notFound = append(r.notFound, fmt.Sprintf("GET %s through %s at %s: 404", ft.ID, n.Name, r.rel(time.Now())))
				r.mu.Unlock()
			}
		}
		r.t.Logf("probed %d GETs and %d cancels during the transfer", gets, cancelled)
	}
}
