package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The figures the fd bound is derived from: the node's delivery workers
// (passed as --delivery:workers) and the http transport's cap on idle
// keep-alive connections over all hosts (transports/httptransport
// DefaultMaxIdleConns; not a flag, so repeated here: the tests do not import
// the node's packages).
const (
	fdWorkers = 256
	fdIdleCap = 1024
	// fdSlack covers what else may open while the load runs: storage
	// (leveldb tables and logs as the records change), a connection being
	// dialled for a request that then took an idle one, one being closed.
	fdSlack = 64
)

// TestFDBoundManyDestinations is the acceptance test "50,000 timers to 5,000
// distinct destinations (addresses in 127.0.0.0/8 and ports) keep file
// descriptors bounded": the node's open file descriptors, sampled from
// /proc/<pid>/fd every 20 ms while every timer is delivered, stay within
// the configured bound (the baseline + delivery workers + the idle
// keep-alive cap + a small slack), far below one per destination, and come
// back within baseline + idle cap once all is delivered. Every timer is
// delivered (at least once), none before its due time, each to its own
// destination.
//
// The receivers are 50 HTTP servers, each listening on 0.0.0.0 on its own
// port: on Linux a socket bound to the wildcard address accepts
// connections to every 127.x.y.z, so 50 ports × 100 loopback addresses
// make 5,000 destinations without 5,000 listening sockets. (A socket bound
// to 127.0.0.1 takes only 127.0.0.1.) A connection that did not come in on
// a loopback address is closed at once; and before the load, a dial to two
// loopback addresses other than 127.0.0.1 checks the premise (the test is
// skipped when it does not hold).
//
// The full 50,000 also under -race (node and test both race-built): about
// 45-55 s on a 2-core machine, against 15 s without. Timer i goes to
// destination i mod 5,000 and the node fires them about in that order, so
// a destination comes round again only after 4,999 others: more than the
// idle cap, so its connection has been evicted: nearly every delivery
// dials a new one (the receivers count the connections), the hardest case
// for a pool that must stay bounded.
func TestFDBoundManyDestinations(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/<pid>/fd and relies on Linux loopback (127.0.0.0/8): Linux only")
	}
	if testing.Short() {
		t.Skip("tens of thousands of timers: skipped with -short")
	}
	const (
		ports     = 50
		addrs     = 100
		dests     = ports * addrs
		createCon = 48 // concurrent create clients
		pilotN    = 1000
		n         = 50000
	)

	rcv := newFDReceivers(t, ports, addrs)

	withLead(t, 0, func(lead time.Duration) time.Duration {
		rcv.reset()
		// The non-race binary: what is measured is descriptors, and 50,000
		// creates and deliveries through a race-built node took 100 s.
		p := newProc(t, nodeConfig{Args: []string{"--delivery:workers", strconv.Itoa(fdWorkers)}})
		p.startBin(heavyBin(t))
		pid := p.pid()
		baseline := countFDs(t, pid)
		t.Logf("node pid %d: %d fds at rest (%s)", pid, baseline, fdKinds(pid))

		cl := newCreateClient(createCon)
		defer cl.CloseIdleConnections()

		// Pilot: how fast this node creates, to choose the lead. Its
		// timers are due in an hour to a receiver that never hears of them.
		far := atIn(time.Hour)
		start := time.Now()
		_, err := createAt(cl, p.URL, pilotN, createCon, time.Time{}, func(i int) map[string]any {
			return fdBody(rcv.uri(i%dests, "/pilot/"+strconv.Itoa(i)), far, i)
		})
		require.NoError(t, err)
		pilot := time.Since(start)
		estimate := pilot * time.Duration(n) / pilotN
		lead = max(lead, 3*estimate/2+2*time.Second)
		at := atIn(lead)
		t.Logf("pilot: %d creates in %v; estimate for %d: %v; due in %v", pilotN, pilot, n, estimate, lead)

		// Timer i goes to destination i mod 5,000: consecutive timers to
		// different destinations, each destination n/5,000 times. No
		// create is sent in the last 500 ms before the due time.
		start = time.Now()
		ids, err := createAt(cl, p.URL, n, createCon, time.UnixMilli(at).Add(-500*time.Millisecond), func(i int) map[string]any {
			return fdBody(rcv.uri(i%dests, "/fd/"+strconv.Itoa(i)), at, i)
		})
		created := time.Since(start)
		if errors.Is(err, errLate) {
			p.Kill()
			t.Logf("creating took longer than the pilot predicted: %v, %d of %d done", created, countSet(ids), n)
			return 2*created*time.Duration(n)/time.Duration(max(1, countSet(ids))) + 3*time.Second
		}
		require.NoError(t, err)
		t.Logf("created %d timers to %d destinations in %v (%.0f/s)", n, dests, created, float64(n)/created.Seconds())
		// The create connections are closed, so the node's API holds none
		// of them while the deliveries run.
		cl.CloseIdleConnections()
		if rcv.total.Load() > 0 || time.Now().UnixMilli() >= at {
			p.Kill()
			t.Logf("the timers came due before all were created (%d deliveries already)", rcv.total.Load())
			return 2*created + 3*time.Second
		}
		// The node closes its ends of them once it reads their EOF: wait
		// for that (until shortly before the due time at most), so they do
		// not count against the deliveries' bound.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		preDue := countFDs(t, pid)
		for preDue > baseline+fdSlack/4 && time.Until(time.UnixMilli(at)) > 200*time.Millisecond {
			<-tick.C
			preDue = countFDs(t, pid)
		}
		t.Logf("%d fds just before the due time (%s)", preDue, fdKinds(pid))

		// Sample the node's fds every 20 ms until every timer is in.
		bound := baseline + fdWorkers + fdIdleCap + fdSlack
		maxFD, maxAt, samples := preDue, time.Now(), 0
		deadline := time.Now().Add(time.Until(time.UnixMilli(at)) + 3*time.Minute)
		for rcv.distinct.Load() < int64(n) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d timers delivered by %v after the due time (fd max %d)", rcv.distinct.Load(), n, time.Since(time.UnixMilli(at)), maxFD)
			}
			<-tick.C
			c := countFDs(t, pid)
			samples++
			if c > maxFD {
				maxFD, maxAt = c, time.Now()
			}
		}
		done := time.Now()
		t.Logf("all %d delivered %v after their due time (%d requests, %d connections accepted by the receivers, at most %d open at once)",
			n, done.Sub(time.UnixMilli(at)).Round(time.Millisecond), rcv.total.Load(), rcv.accepted.Load(), rcv.maxOpen.Load())
		t.Logf("node fds: baseline %d, before due %d, max %d (baseline +%d, %v after due) over %d samples; bound %d (baseline + %d workers + %d idle + %d)",
			baseline, preDue, maxFD, maxFD-baseline, maxAt.Sub(time.UnixMilli(at)).Round(time.Millisecond), samples,
			bound, fdWorkers, fdIdleCap, fdSlack)

		require.LessOrEqualf(t, maxFD, bound, "the node's open fds went over baseline + workers + idle cap + slack")
		require.Lessf(t, maxFD-baseline, dests/2, "far fewer fds than destinations: connections are not kept one per destination")

		// Once all is delivered nothing is in flight: what stays open is
		// at most the idle keep-alive pool.
		settled := baseline + fdIdleCap + fdSlack
		var after int
		settleBy := time.Now().Add(15 * time.Second)
		for after = countFDs(t, pid); after > settled && time.Now().Before(settleBy); after = countFDs(t, pid) {
			<-tick.C
		}
		t.Logf("%d fds after the deliveries (baseline +%d; at most baseline + idle cap + slack = %d) (%s)",
			after, after-baseline, settled, fdKinds(pid))
		require.LessOrEqualf(t, after, settled, "the node's fds did not come back within the idle keep-alive cap once all was delivered")

		rcv.check(t, n, at, dests)
		p.Stop()
		return 0
	})
}

// fdBody is a create body: due at at (Unix ms), an http post callback to
// uri, data i.
func fdBody(uri string, at int64, i int) map[string]any {
	return map[string]any{
		"at":       at,
		"data":     strconv.Itoa(i),
		"callback": map[string]any{"transport": "http", "method": "post", "uri": uri},
	}
}

// newCreateClient is an HTTP client for creates over con keep-alive
// connections, of its own, so the test can close them before it counts
// the node's fds.
func newCreateClient(con int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        con,
			MaxIdleConnsPerHost: con,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// createAt is createMany over the client cl: n creates at base+/timer by
// workers concurrent clients, the i-th body mk(i); none is sent from until
// on (zero: no deadline), then it returns errLate. It returns the ids by
// index and the first error.
func createAt(cl *http.Client, base string, n, workers int, until time.Time, mk func(i int) map[string]any) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		next.Store(int64(n)) // stop everyone
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if !until.IsZero() && !time.Now().Before(until) {
					fail(errLate)
					return
				}
				id, err := createOne(cl, base, mk(i))
				if err != nil {
					fail(fmt.Errorf("POST /timer #%d: %w", i, err))
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	return ids, firstErr
}

func createOne(cl *http.Client, base string, b map[string]any) (string, error) {
	j, err := json.Marshal(b)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodPost, base+"/timer", bytes.NewReader(j))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%d reason=%q body=%q", res.StatusCode, res.Header.Get("x-skyring-reason"), rb)
	}
	id, ok := strings.CutPrefix(res.Header.Get("Location"), "/timer/")
	if !ok || id == "" {
		return "", fmt.Errorf("Location %q", res.Header.Get("Location"))
	}
	return id, nil
}

// pid is the process id of the node's current life.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// countFDs is the number of open file descriptors of process pid.
func countFDs(t testing.TB, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	require.NoError(t, err)
	return len(names)
}

// fdKinds summarises what process pid's fds are: "socket 12, anon_inode 3,
// …", for the log. Best effort (an fd closed while it reads is skipped).
func fdKinds(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	names, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	kinds := map[string]int{}
	for _, e := range names {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		k := "file"
		if i := strings.IndexAny(l, ":["); i > 0 && !strings.HasPrefix(l, "/") {
			k = l[:i]
		}
		kinds[k]++
	}
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, kinds[k])
	}
	return strings.Join(parts, ", ")
}

// fdArrival is the first delivery of one timer.
type fdArrival struct {
	Path  string
	Local string // the address the connection came in on
	At    time.Time
}

// fdReceivers are HTTP servers on 0.0.0.0, one a port, that answer 200 at
// once and record the first arrival of every timer id (and count the
// others). Their destinations are 127.0.0.k:port for k in 1..addrs.
type fdReceivers struct {
	srv   []*http.Server
	ports []int
	addrs int

	mu    sync.Mutex
	first map[string]fdArrival

	total, distinct    atomic.Int64
	accepted, open     atomic.Int64
	maxOpen            atomic.Int64
	nonLoopbackClosed  atomic.Int64
	missingID, badBody atomic.Int64
}

func newFDReceivers(t *testing.T, ports, addrs int) *fdReceivers {
	t.Helper()
	r := &fdReceivers{addrs: addrs, first: map[string]fdArrival{}}
	for range ports {
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		require.NoError(t, err)
		srv := &http.Server{
			Handler:           http.HandlerFunc(r.serve),
			ReadHeaderTimeout: 30 * time.Second,
			ConnState:         r.connState,
		}
		r.srv = append(r.srv, srv)
		r.ports = append(r.ports, l.Addr().(*net.TCPAddr).Port)
		go func() { _ = srv.Serve(loopbackOnly{l, &r.nonLoopbackClosed}) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	// The premise: 127.0.0.k other than 127.0.0.1 reaches the wildcard
	// listener.
	for _, k := range []int{2, addrs} {
		addr := net.JoinHostPort(fmt.Sprintf("127.0.0.%d", k), strconv.Itoa(r.ports[0]))
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Skipf("a listener on 0.0.0.0 is not reachable at %s (%v): needs Linux loopback over 127.0.0.0/8", addr, err)
		}
		_ = c.Close()
	}
	return r
}

// dest is the host:port of destination d (0 ≤ d < ports×addrs): address
// 127.0.0.(d mod addrs + 1), port number d / addrs.
func (r *fdReceivers) dest(d int) string {
	return net.JoinHostPort(fmt.Sprintf("127.0.0.%d", d%r.addrs+1), strconv.Itoa(r.ports[d/r.addrs]))
}

func (r *fdReceivers) uri(d int, path string) string { return "http://" + r.dest(d) + path }

func (r *fdReceivers) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.first = map[string]fdArrival{}
	r.total.Store(0)
	r.distinct.Store(0)
	r.missingID.Store(0)
	r.badBody.Store(0)
	r.accepted.Store(0)
	r.maxOpen.Store(r.open.Load())
}

func (r *fdReceivers) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		r.accepted.Add(1)
		o := r.open.Add(1)
		for m := r.maxOpen.Load(); o > m && !r.maxOpen.CompareAndSwap(m, o); m = r.maxOpen.Load() {
		}
	case http.StateClosed, http.StateHijacked:
		r.open.Add(-1)
	}
}

func (r *fdReceivers) serve(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	b, _ := io.ReadAll(req.Body)
	id := req.Header.Get("x-skyring-timer-id")
	local := ""
	if a, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a.String()
	}
	r.total.Add(1)
	if id == "" {
		r.missingID.Add(1)
	} else if i, ok := strings.CutPrefix(req.URL.Path, "/fd/"); ok && string(b) != i {
		r.badBody.Add(1)
	}
	if id != "" {
		r.mu.Lock()
		if _, seen := r.first[id]; !seen {
			r.first[id] = fdArrival{Path: req.URL.Path, Local: local, At: at}
			r.distinct.Add(1)
		}
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// check requires that each of the n timers created at ids (by index) was
// delivered, not before at (Unix ms), at its own path and destination,
// and that nothing else came.
func (r *fdReceivers) check(t *testing.T, n int, at int64, dests int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Zero(t, r.missingID.Load(), "deliveries without x-skyring-timer-id")
	require.Zero(t, r.badBody.Load(), "deliveries whose body is not their timer's data")
	require.Len(t, r.first, n, "distinct timer ids delivered")
	dueNS := at * int64(time.Millisecond)
	var early, wrong []string
	seen := make([]bool, n)
	for id, a := range r.first {
		i, err := strconv.Atoi(strings.TrimPrefix(a.Path, "/fd/"))
		if err != nil || i < 0 || i >= n || !strings.HasPrefix(a.Path, "/fd/") {
			wrong = append(wrong, fmt.Sprintf("%s at %q", id, a.Path))
			continue
		}
		seen[i] = true
		if want := r.dest(i % dests); a.Local != want {
			wrong = append(wrong, fmt.Sprintf("timer %d (%s) came in on %s, not %s", i, id, a.Local, want))
		}
		if ns := a.At.Round(0).UnixNano(); ns < dueNS {
			early = append(early, fmt.Sprintf("timer %d (%s) by %v", i, id, time.Duration(dueNS-ns)))
		}
	}
	for i, ok := range seen {
		if !ok {
			wrong = append(wrong, fmt.Sprintf("timer %d never delivered", i))
		}
	}
	require.Empty(t, early, "timers delivered before their due time")
	require.Empty(t, wrong, "timers delivered to the wrong place, or not at all")
	if dup := r.total.Load() - int64(n); dup > 0 {
		t.Logf("%d deliveries beyond the first of their timer (at least once is what is checked)", dup)
	}
}

// loopbackOnly is a listener that closes, at once, every connection that
// did not come in on a loopback address: the receivers listen on 0.0.0.0
// only to take all of 127.0.0.0/8.
type loopbackOnly struct {
	net.Listener
	closed *atomic.Int64
}

func (l loopbackOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := c.LocalAddr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			return c, nil
		}
		l.closed.Add(1)
		_ = c.Close()
	}
}
