package jsstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/jsstore"
	"github.com/skyring/skyring/storage/storagetest"
)

var _ storage.Versioned = (*jsstore.Store)(nil)

// requireStored checks that id holds the timer storagetest.Timer(id, i)
// wrote, at version v.
func requireStored(t *testing.T, s *jsstore.Store, id string, i int, v uint64) {
	t.Helper()
	got, gv, err := s.GetVersion(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, v, gv)
	want := storagetest.Timer(id, i)
	require.Equal(t, want.Due, got.Due)
	require.Equal(t, string(want.Data), string(got.Data))
}

func requireNotFound(t *testing.T, s *jsstore.Store, id string) {
	t.Helper()
	got, v, err := s.GetVersion(context.Background(), id)
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)
	require.Nil(t, got)
	require.Zero(t, v)
}

// PutIf and DeleteIf succeed at the version GetVersion gave, and every
// write gives a new version; 0 stands for "no record", never stored or
// deleted (a tombstone).
func TestVersionedHappyPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{})

	requireNotFound(t, s, "a")
	v1, err := s.PutIf(ctx, storagetest.Timer("a", 1), 0)
	require.NoError(t, err)
	require.NotZero(t, v1)
	requireStored(t, s, "a", 1, v1)

	v2, err := s.PutIf(ctx, storagetest.Timer("a", 2), v1)
	require.NoError(t, err)
	require.Greater(t, v2, v1)
	requireStored(t, s, "a", 2, v2)

	// Unconditional writes change the version too.
	require.NoError(t, s.Put(ctx, storagetest.Timer("a", 3)))
	_, v3, err := s.GetVersion(ctx, "a")
	require.NoError(t, err)
	require.Greater(t, v3, v2)

	require.NoError(t, s.DeleteIf(ctx, "a", v3))
	requireNotFound(t, s, "a")
	_, err = s.Get(ctx, "a")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)

	// expect 0 on a tombstoned subject: the tombstone is no record.
	v4, err := s.PutIf(ctx, storagetest.Timer("a", 4), 0)
	require.NoError(t, err)
	require.Greater(t, v4, v3)
	requireStored(t, s, "a", 4, v4)

	// DeleteIf at 0 succeeds where nothing is stored (never, or deleted).
	require.NoError(t, s.DeleteIf(ctx, "never", 0))
	requireNotFound(t, s, "never")
	require.NoError(t, s.Delete(ctx, "gone"))
	require.NoError(t, s.DeleteIf(ctx, "gone", 0))
	requireNotFound(t, s, "gone")
	v5, err := s.PutIf(ctx, storagetest.Timer("never", 5), 0)
	require.NoError(t, err)
	requireStored(t, s, "never", 5, v5)

	// The store's other readers see conditional writes like any other.
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Equal(t, 2, n)
}

// Two writers read the same version and both write at it: the first wins,
// the second gets ErrConflict and nothing of its write is stored.
func TestVersionedConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	a := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "shared"})
	b := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "shared"})

	require.NoError(t, a.Put(ctx, storagetest.Timer("x", 0)))
	_, va, err := a.GetVersion(ctx, "x")
	require.NoError(t, err)
	_, vb, err := b.GetVersion(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, va, vb)

	won, err := a.PutIf(ctx, storagetest.Timer("x", 1), va)
	require.NoError(t, err)
	_, err = b.PutIf(ctx, storagetest.Timer("x", 2), vb)
	require.ErrorIs(t, err, storage.ErrConflict)
	require.NotErrorIs(t, err, storage.ErrWrite, "a refused write wrote nothing")
	require.ErrorContains(t, err, `"x"`, "the error names the id")
	requireStored(t, a, "x", 1, won)
	requireStored(t, b, "x", 1, won)

	// Likewise a delete at the stale version, and a put expecting no record.
	require.ErrorIs(t, b.DeleteIf(ctx, "x", vb), storage.ErrConflict)
	_, err = b.PutIf(ctx, storagetest.Timer("x", 3), 0)
	require.ErrorIs(t, err, storage.ErrConflict)
	requireStored(t, b, "x", 1, won)

	// A version the record never had.
	_, err = b.PutIf(ctx, storagetest.Timer("x", 4), won+1000)
	require.ErrorIs(t, err, storage.ErrConflict)
	requireStored(t, b, "x", 1, won)
}

// A version read before someone else's Put or Delete is stale.
func TestVersionedStaleAfterOtherWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	a := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "stale"})
	b := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "stale"})

	v, err := a.PutIf(ctx, storagetest.Timer("y", 1), 0)
	require.NoError(t, err)
	require.NoError(t, b.Put(ctx, storagetest.Timer("y", 2))) // someone else's Put
	_, err = a.PutIf(ctx, storagetest.Timer("y", 3), v)
	require.ErrorIs(t, err, storage.ErrConflict)
	require.ErrorIs(t, a.DeleteIf(ctx, "y", v), storage.ErrConflict)
	_, v2, err := a.GetVersion(ctx, "y")
	require.NoError(t, err)
	requireStored(t, a, "y", 2, v2)

	require.NoError(t, b.Delete(ctx, "y")) // someone else's Delete
	_, err = a.PutIf(ctx, storagetest.Timer("y", 4), v2)
	require.ErrorIs(t, err, storage.ErrConflict, "a deleted record is not at its old version")
	require.ErrorIs(t, a.DeleteIf(ctx, "y", v2), storage.ErrConflict)
	requireNotFound(t, a, "y")

	// Someone else's Put after a Delete: expecting no record is stale.
	require.NoError(t, b.Put(ctx, storagetest.Timer("y", 5)))
	_, err = a.PutIf(ctx, storagetest.Timer("y", 6), 0)
	require.ErrorIs(t, err, storage.ErrConflict)
	_, v5, err := a.GetVersion(ctx, "y")
	require.NoError(t, err)
	requireStored(t, a, "y", 5, v5)
}

// race has writers claim id at the version each read (all the same one,
// expect), spread over the stores, and returns which of them won and the
// version the winners got.
func race(t *testing.T, stores []*jsstore.Store, id string, writers int, expect uint64) (winners []int, version uint64) {
	t.Helper()
	ctx := context.Background()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	errs := make(chan error, writers)
	for w := range writers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			<-start
			v, err := s.PutIf(ctx, storagetest.Timer(id, w), expect)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, w)
				version = v
				mu.Unlock()
			case !errors.Is(err, storage.ErrConflict):
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return winners, version
}

// 64 writers on two connections (two nodes) claim one record at the same
// version: exactly one wins, and its write is what is stored. Likewise for
// a new id and a deleted one (expect 0).
func TestVersionedRace(t *testing.T) {
	t.Parallel()
	srv := runJetStream(t)
	stores := []*jsstore.Store{
		newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "race"}),
		newStore(t, connect(t, srv.ClientURL()), jsstore.Options{Prefix: "race"}),
	}
	raceRounds(t, stores)
}

func raceRounds(t *testing.T, stores []*jsstore.Store) {
	t.Helper()
	ctx := context.Background()
	const writers = 64
	s := stores[0]
	for round := range 5 {
		id := fmt.Sprintf("claim-%d", round)
		// New id, expect 0.
		winners, v := race(t, stores, id, writers, 0)
		require.Len(t, winners, 1, "round %d, new id", round)
		requireStored(t, s, id, winners[0], v)
		// Existing record, expect its version.
		winners, v = race(t, stores, id, writers, v)
		require.Len(t, winners, 1, "round %d, existing record", round)
		requireStored(t, s, id, winners[0], v)
		// Deleted (tombstone), expect 0.
		require.NoError(t, s.DeleteIf(ctx, id, v))
		winners, v = race(t, stores, id, writers, 0)
		require.Len(t, winners, 1, "round %d, deleted record", round)
		requireStored(t, s, id, winners[0], v)
	}
}

// A record that does not decode has a version, so that it can be replaced
// conditionally.
func TestVersionedCorrupt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	nc := connect(t, srv.ClientURL())
	s := newStore(t, nc, jsstore.Options{Prefix: "vcorrupt"})
	subj := fmt.Sprintf("vcorrupt.%d.%s", jsstore.Partition("bad"), jsstore.EncodeID("bad"))
	_, err := nc.Request(subj, []byte("not a timer"), 5*time.Second)
	require.NoError(t, err)
	_, v, err := s.GetVersion(ctx, "bad")
	require.ErrorIs(t, err, skyring.ErrCorrupt)
	require.NotZero(t, v)
	_, err = s.PutIf(ctx, storagetest.Timer("bad", 1), 0)
	require.ErrorIs(t, err, storage.ErrConflict, "a corrupt record is a record")
	v1, err := s.PutIf(ctx, storagetest.Timer("bad", 1), v)
	require.NoError(t, err)
	requireStored(t, s, "bad", 1, v1)
}

func TestVersionedClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	s := newStore(t, connect(t, srv.ClientURL()), jsstore.Options{})
	require.NoError(t, s.Close())
	_, _, err := s.GetVersion(ctx, "a")
	require.ErrorIs(t, err, skyring.ErrClosed)
	_, err = s.PutIf(ctx, storagetest.Timer("a", 1), 0)
	require.ErrorIs(t, err, skyring.ErrClosed)
	require.ErrorIs(t, s.DeleteIf(ctx, "a", 0), skyring.ErrClosed)
	_, err = s.PutIf(ctx, nil, 0)
	require.Error(t, err)
}

// On an R3 stream, conditional writes round-trip, conflicts are
// ErrConflict (the replicated stream refuses with code 10071, or 10164
// while another write to the subject is in flight), and a race on one
// record still has exactly one winner.
func TestVersionedReplicated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	servers := runJetStreamCluster(t, 3)
	var urls []string
	for _, srv := range servers {
		urls = append(urls, srv.ClientURL())
	}
	open := func() *jsstore.Store {
		return newStore(t, connect(t, strings.Join(urls, ",")),
			jsstore.Options{Prefix: "vr3", Replicas: 3, MaxBatch: jsstore.DefaultMaxBatch})
	}
	s := open()
	v1, err := s.PutIf(ctx, storagetest.Timer("z", 1), 0)
	require.NoError(t, err)
	requireStored(t, s, "z", 1, v1)
	v2, err := s.PutIf(ctx, storagetest.Timer("z", 2), v1)
	require.NoError(t, err)
	requireStored(t, s, "z", 2, v2)
	_, err = s.PutIf(ctx, storagetest.Timer("z", 3), v1)
	require.ErrorIs(t, err, storage.ErrConflict)
	require.NoError(t, s.DeleteIf(ctx, "z", v2))
	requireNotFound(t, s, "z")

	raceRounds(t, []*jsstore.Store{s, open()})
}

// The conflict a PutIf gets is JetStream's own refusal, not a read the
// store made: a write slipped in by a raw publish between GetVersion and
// PutIf is caught.
func TestVersionedRawWriterConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := runJetStream(t)
	nc := connect(t, srv.ClientURL())
	s := newStore(t, nc, jsstore.Options{Prefix: "raw"})
	v, err := s.PutIf(ctx, storagetest.Timer("r", 1), 0)
	require.NoError(t, err)
	data, err := storagetest.Timer("r", 2).AppendBinary(nil)
	require.NoError(t, err)
	_, err = nc.RequestMsg(&nats.Msg{
		Subject: fmt.Sprintf("raw.%d.%s", jsstore.Partition("r"), jsstore.EncodeID("r")),
		Data:    data,
	}, 5*time.Second)
	require.NoError(t, err)
	_, err = s.PutIf(ctx, storagetest.Timer("r", 3), v)
	require.ErrorIs(t, err, storage.ErrConflict)
	_, v2, err := s.GetVersion(ctx, "r")
	require.NoError(t, err)
	requireStored(t, s, "r", 2, v2)
}
