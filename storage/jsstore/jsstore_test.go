package jsstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/jsstore"
	"github.com/skyring/skyring/storage/storagetest"
)

var _ storage.Store = (*jsstore.Store)(nil)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runJetStream starts an in-process nats-server with JetStream, storing in
// a temporary directory, and shuts it down at cleanup.
func runJetStream(t testing.TB) *server.Server {
	t.Helper()
	return runJetStreamOpts(t, false)
}

// runJetStreamOpts is runJetStream, with fsync after every write if
// syncAlways (nats-server's sync_interval: always).
func runJetStreamOpts(t testing.TB, syncAlways bool) *server.Server {
	t.Helper()
	opts := natstest.DefaultTestOptions
	opts.SyncAlways = syncAlways
	opts.Port = server.RANDOM_PORT
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	opts.JetStreamLimits.MaxBatchSize = testMaxBatch
	s := natstest.RunServer(&opts)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(t testing.TB, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// testMaxBatch is the test servers' max_batch_size: the conformance suite
// puts 5,000 timers at once.
const testMaxBatch = 10_000

var prefixes atomic.Int64

// newStore opens a store on its own fresh prefix (so its own stream).
func newStore(t testing.TB, nc *nats.Conn, opts jsstore.Options) *jsstore.Store {
	t.Helper()
	opts.Conn = nc
	if opts.MaxBatch == 0 {
		opts.MaxBatch = testMaxBatch
	}
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("t%d.timers", prefixes.Add(1))
	}
	s, err := jsstore.Open(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := runJetStream(t)
	nc := connect(t, srv.ClientURL())
	storagetest.Exercise(t, func(t *testing.T) storage.Store { return newStore(t, nc, jsstore.Options{}) })
}

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	srv := runJetStream(t)
	nc := connect(t, srv.ClientURL())
	storagetest.Exercise(t, func(t *testing.T) storage.Store {
		return newStore(t, nc, jsstore.Options{Memory: true})
	})
}

// A store opened again on the same stream, through another connection,
// reads what the first one wrote.
func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "reopen"})
	ts := storagetest.Timers("p", 1500)
	require.NoError(t, s.Put(ctx, ts[:1000]...))
	for _, tm := range ts[1000:] {
		require.NoError(t, s.Put(ctx, tm))
	}
	require.NoError(t, s.Delete(ctx, "p-0", "p-1"))
	require.NoError(t, s.SetMeta(ctx, "node-id", []byte("n1")))
	require.NoError(t, s.Close())

	again := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "reopen"})
	n := 0
	require.NoError(t, again.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Equal(t, len(ts)-2, n)
	got, err := again.Get(ctx, "p-1499")
	require.NoError(t, err)
	require.Equal(t, ts[1499].Due, got.Due)
	_, err = again.Get(ctx, "p-1")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)
	v, err := again.Meta(ctx, "node-id")
	require.NoError(t, err)
	require.Equal(t, []byte("n1"), v)
}

func TestBatchTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{MaxBatch: jsstore.DefaultMaxBatch})
	require.ErrorIs(t, s.Put(ctx, storagetest.Timers("big", jsstore.DefaultMaxBatch+1)...), jsstore.ErrBatchTooLarge)
	require.ErrorIs(t, s.Delete(ctx, make([]string, jsstore.DefaultMaxBatch+1)...), jsstore.ErrBatchTooLarge)
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Zero(t, n, "a refused batch writes nothing")
	require.NoError(t, s.Put(ctx, storagetest.Timers("max", jsstore.DefaultMaxBatch)...))
}

// IteratePartition sees exactly the timers of one partition.
func TestIteratePartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{})
	ts := storagetest.Timers("part", 3000)
	for i := 0; i < len(ts); i += 1000 {
		require.NoError(t, s.Put(ctx, ts[i:i+1000]...))
	}
	want := map[int]map[string]bool{}
	for _, tm := range ts {
		p := jsstore.Partition(tm.ID)
		if want[p] == nil {
			want[p] = map[string]bool{}
		}
		want[p][tm.ID] = true
	}
	require.NoError(t, s.Delete(ctx, ts[0].ID))
	delete(want[jsstore.Partition(ts[0].ID)], ts[0].ID)
	for _, p := range []int{jsstore.Partition(ts[0].ID), jsstore.Partition(ts[1].ID), jsstore.Partition(ts[2999].ID)} {
		got := map[string]bool{}
		require.NoError(t, s.IteratePartition(ctx, p, func(tm *skyring.Timer) error {
			require.Equal(t, p, jsstore.Partition(tm.ID))
			got[tm.ID] = true
			return nil
		}))
		require.Equal(t, want[p], got, "partition %d", p)
	}
	// A partition with no timer is empty, not an error or a hang.
	for p := range jsstore.Partitions {
		if len(want[p]) == 0 {
			require.NoError(t, s.IteratePartition(ctx, p, func(tm *skyring.Timer) error {
				return fmt.Errorf("timer %q in empty partition %d", tm.ID, p)
			}))
			break
		}
	}
	require.Error(t, s.IteratePartition(ctx, jsstore.Partitions, func(*skyring.Timer) error { return nil }))
}

// A record that does not decode is moved aside by Iterate, reported, and
// Get says ErrCorrupt until a new timer is stored under the id.
func TestCorruptRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	nc := connect(t, srv.ClientURL())
	var reported []string
	s := newStore(t, nc, jsstore.Options{Prefix: "corrupt", Logger: slog.New(slog.DiscardHandler), OnCorrupt: func(id string, err error) {
		require.ErrorIs(t, err, skyring.ErrCorrupt)
		reported = append(reported, id)
	}})
	require.NoError(t, s.Put(ctx, storagetest.Timers("ok", 3)...))
	// Write garbage under a timer's subject, as a bug or bit flip would.
	subj := fmt.Sprintf("corrupt.%d.%s", jsstore.Partition("bad"), jsstore.EncodeID("bad"))
	_, err := nc.Request(subj, []byte("not a timer"), 5*time.Second)
	require.NoError(t, err)

	_, err = s.Get(ctx, "bad")
	require.ErrorIs(t, err, skyring.ErrCorrupt)
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Equal(t, 3, n)
	require.Equal(t, []string{"bad"}, reported)
	_, err = s.Get(ctx, "bad")
	require.ErrorIs(t, err, skyring.ErrCorrupt, "moved aside, still corrupt")
	n = 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Equal(t, 3, n)
	require.Len(t, reported, 1, "a record is moved aside once")

	require.NoError(t, s.Put(ctx, storagetest.Timer("bad", 1)))
	_, err = s.Get(ctx, "bad")
	require.NoError(t, err)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := jsstore.Open(ctx, jsstore.Options{})
	require.ErrorContains(t, err, "no connection")
	srv := runJetStream(t)
	nc := connect(t, srv.ClientURL())
	_, err = jsstore.Open(ctx, jsstore.Options{Conn: nc, Replicas: 2})
	require.ErrorContains(t, err, "replicas")
	for _, bad := range []string{"a..b", "a.*", "a.>", "a b", ".a"} {
		_, err = jsstore.Open(ctx, jsstore.Options{Conn: nc, Prefix: bad})
		require.Error(t, err, bad)
	}
	// R3 on a single server cannot be placed.
	_, err = jsstore.Open(ctx, jsstore.Options{Conn: nc, Prefix: "r3", Replicas: 3})
	require.Error(t, err)
}

// runJetStreamCluster starts n in-process nats-servers with JetStream,
// routed into one cluster, and waits until JetStream has a meta leader.
func runJetStreamCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	servers := make([]*server.Server, n)
	for i := range n {
		opts := natstest.DefaultTestOptions
		opts.ServerName = fmt.Sprintf("js-%d", i)
		opts.Port = server.RANDOM_PORT
		opts.JetStream = true
		opts.StoreDir = t.TempDir()
		opts.Cluster.Name = "jsstore"
		opts.Cluster.Host = "127.0.0.1"
		opts.Cluster.Port = ports[i]
		opts.Routes = routes
		servers[i] = natstest.RunServer(&opts)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := anyLeader(servers)
		for _, s := range servers {
			ready = ready && s.JetStreamIsCurrent()
		}
		if ready {
			return servers
		}
		if time.Now().After(deadline) {
			t.Fatal("JetStream cluster did not form")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func anyLeader(servers []*server.Server) bool {
	for _, s := range servers {
		if s.Running() && s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// On a three-server cluster with R3, killing the stream's leader loses no
// acknowledged write: every timer and meta value acknowledged before the
// kill is read back from the two survivors, and writes go on.
func TestReplicatedSurvivesServerLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	servers := runJetStreamCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	nc := connect(t, strings.Join(urls, ","))
	s := newStore(t, nc, jsstore.Options{Prefix: "r3", Replicas: 3, MaxBatch: jsstore.DefaultMaxBatch})

	ts := storagetest.Timers("r3", 2000)
	require.NoError(t, s.Put(ctx, ts[:1000]...)) // one atomic batch
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for _, tm := range ts[1000:] { // pipelined single Puts
		wg.Go(func() {
			if err := s.Put(ctx, tm); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, s.Delete(ctx, "r3-0", "r3-1999"))
	require.NoError(t, s.SetMeta(ctx, "node-id", []byte("n1")))

	info, err := s.Stream().Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, info.Config.Replicas)
	require.NotNil(t, info.Cluster)
	leader := info.Cluster.Leader
	killed := false
	for _, srv := range servers {
		if srv.Name() == leader {
			srv.Shutdown()
			srv.WaitForShutdown()
			killed = true
		}
	}
	require.True(t, killed, "stream leader %q not found", leader)

	// Until the survivors elect a new leader, reads fail; poll with a
	// deadline until one answers, then every read must.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Get(ctx, "r3-1")
		if err == nil {
			break
		}
		require.False(t, time.Now().After(deadline), "no stream leader after the kill: %v", err)
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	info, err = s.Stream().Info(ctx)
	require.NoError(t, err)
	require.NotEqual(t, leader, info.Cluster.Leader)

	for _, want := range ts[1:1999] {
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err, want.ID)
		require.Equal(t, want.Due, got.Due)
		require.Equal(t, string(want.Data), string(got.Data))
	}
	for _, id := range []string{"r3-0", "r3-1999"} {
		_, err := s.Get(ctx, id)
		require.ErrorIs(t, err, skyring.ErrTimerNotFound, id)
	}
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Equal(t, 1998, n)
	v, err := s.Meta(ctx, "node-id")
	require.NoError(t, err)
	require.Equal(t, []byte("n1"), v)

	// Two of three servers are a quorum: writes are acknowledged again.
	require.NoError(t, s.Put(ctx, storagetest.Timer("after", 1)))
	require.NoError(t, s.Put(ctx, storagetest.Timers("after-batch", 10)...))
	_, err = s.Get(ctx, "after-batch-9")
	require.NoError(t, err)
}

// A partition scan racing with atomic batches sees, for each batch, all of
// its timers in that partition or none.
func TestIteratePartitionBatchAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{})
	const rounds, size = 10, 200
	batches := make([][]*skyring.Timer, rounds)
	p := jsstore.Partition("r0-0")
	want := make([]int, rounds) // timers of each round in partition p
	for r := range batches {
		// Half of each batch in partition p, interleaved with the rest.
		for i := 0; len(batches[r]) < size; i++ {
			tm := storagetest.Timer(fmt.Sprintf("r%d-%d", r, i), i)
			in := jsstore.Partition(tm.ID) == p
			if in == (len(batches[r])%2 == 0) {
				tm.Data = []byte(fmt.Sprintf(`"round %d"`, r))
				batches[r] = append(batches[r], tm)
				if in {
					want[r]++
				}
			}
		}
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	scans := 0
	go func() {
		defer close(errc)
		for rctx.Err() == nil {
			scans++
			seen := map[int]int{}
			err := s.IteratePartition(ctx, p, func(tm *skyring.Timer) error {
				var r int
				if _, err := fmt.Sscanf(string(tm.Data), `"round %d"`, &r); err != nil {
					return err
				}
				seen[r]++
				return nil
			})
			if err != nil {
				errc <- err
				return
			}
			for r, n := range seen {
				if n != want[r] {
					errc <- fmt.Errorf("round %d: saw %d of the %d timers of partition %d", r, n, want[r], p)
					return
				}
			}
		}
	}()
	for _, b := range batches {
		require.NoError(t, s.Put(ctx, b...))
	}
	stop()
	require.NoError(t, <-errc)
	require.Positive(t, scans)
}

// A batch the server refuses (here: larger than its max_batch_size) is an
// API error, not storage.ErrWrite, and writes nothing.
func TestBatchRefusedByServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{MaxBatch: 2 * testMaxBatch})
	err := s.Put(ctx, storagetest.Timers("big", testMaxBatch+1)...)
	require.Error(t, err)
	var api *jetstream.APIError
	require.ErrorAs(t, err, &api)
	require.NotErrorIs(t, err, storage.ErrWrite, "the server refused it: nothing was written")
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Zero(t, n)
	require.NoError(t, s.Put(ctx, storagetest.Timers("ok", 2)...), "the store takes writes after a refusal")
}

// A write whose PubAck never comes (the server is gone) has an unknown
// outcome: it matches storage.ErrWrite, for one timer and for a batch.
func TestUnknownOutcomeIsErrWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Timeout: 2 * time.Second})
	require.NoError(t, s.Put(ctx, storagetest.Timer("before", 1)))
	srv.Shutdown()
	srv.WaitForShutdown()
	require.ErrorIs(t, s.Put(ctx, storagetest.Timer("after", 1)), storage.ErrWrite)
	require.ErrorIs(t, s.Put(ctx, storagetest.Timers("after", 3)...), storage.ErrWrite)
	require.ErrorIs(t, s.Delete(ctx, "before"), storage.ErrWrite)
}
