package leveldbstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// garbage is a value no version of the timer encoding accepts.
var garbage = []byte{99, 1, 2, 3}

// corruptions records what a store reported to Options.OnCorrupt.
type corruptions struct {
	mu   sync.Mutex
	ids  []string
	errs []error
}

func (c *corruptions) report(id string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	c.errs = append(c.errs, err)
}

func (c *corruptions) IDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

// putRaw writes key=value straight into the goleveldb database in dir, as a
// bit flip or an older, buggy version of the node would have left it.
func putRaw(t *testing.T, dir string, kv ...[]byte) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	for i := 0; i < len(kv); i += 2 {
		require.NoError(t, db.Put(kv[i], kv[i+1], nil))
	}
	require.NoError(t, db.Close())
}

func getRaw(t *testing.T, dir string, key string) ([]byte, error) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	return db.Get([]byte(key), nil)
}

func iterIDs(t *testing.T, s storage.Store) []string {
	t.Helper()
	var ids []string
	require.NoError(t, s.Iterate(context.Background(), func(tm *skyring.Timer) error {
		ids = append(ids, tm.ID)
		return nil
	}))
	return ids
}

func quarantined(t *testing.T, s *leveldbstore.Store) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	require.NoError(t, s.Quarantined(context.Background(), func(id string, raw []byte) error {
		got[id] = raw
		return nil
	}))
	return got
}

// One record that does not decode is moved aside, kept, logged and
// reported; the scan, and so the node's recovery, goes on.
func TestCorruptRecordMovedAside(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()

	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, storagetest.Timer("a-good", 1), storagetest.Timer("c-good", 2)))
	require.NoError(t, s.Close())
	putRaw(t, dir, []byte("t/b-bad"), garbage)

	var logs bytes.Buffer
	var seen corruptions
	open := func() *leveldbstore.Store {
		s, err := leveldbstore.Open(storage.Options{
			Path:      dir,
			Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
			OnCorrupt: seen.report,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s = open()

	// Before recovery has met it, Get reports the record as corrupt.
	_, err = s.Get(ctx, "b-bad")
	require.ErrorIs(t, err, skyring.ErrCorrupt)

	require.Equal(t, []string{"a-good", "c-good"}, iterIDs(t, s))
	require.Equal(t, []string{"b-bad"}, seen.IDs())
	require.ErrorIs(t, seen.errs[0], skyring.ErrCorrupt)
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "moved aside")
	require.Contains(t, logs.String(), "timer_id=b-bad")

	// Moved aside: still an error for Get, not "not found", and kept as is.
	_, err = s.Get(ctx, "b-bad")
	require.ErrorIs(t, err, skyring.ErrCorrupt)
	require.NotErrorIs(t, err, skyring.ErrTimerNotFound)
	require.Equal(t, map[string][]byte{"b-bad": garbage}, quarantined(t, s))

	// A second scan neither sees nor reports it again.
	require.Equal(t, []string{"a-good", "c-good"}, iterIDs(t, s))
	require.Len(t, seen.IDs(), 1)

	// On disk: gone from the timer keyspace, kept under its quarantine key.
	require.NoError(t, s.Close())
	_, err = getRaw(t, dir, "t/b-bad")
	require.ErrorIs(t, err, leveldb.ErrNotFound)
	raw, err := getRaw(t, dir, "q/t/b-bad")
	require.NoError(t, err)
	require.Equal(t, garbage, raw)

	// After a restart too.
	s = open()
	require.Equal(t, []string{"a-good", "c-good"}, iterIDs(t, s))
	require.Len(t, seen.IDs(), 1)

	// A new timer under that id is a timer like any other; once it is gone,
	// Get reports the lost record again.
	require.NoError(t, s.Put(ctx, storagetest.Timer("b-bad", 3)))
	got, err := s.Get(ctx, "b-bad")
	require.NoError(t, err)
	require.Equal(t, storagetest.Timer("b-bad", 3).Due, got.Due)
	require.Equal(t, []string{"a-good", "b-bad", "c-good"}, iterIDs(t, s))
	require.NoError(t, s.Delete(ctx, "b-bad"))
	_, err = s.Get(ctx, "b-bad")
	require.ErrorIs(t, err, skyring.ErrCorrupt)
	require.Equal(t, map[string][]byte{"b-bad": garbage}, quarantined(t, s))
}

// Many corrupt records among many good ones: the scan writes while its
// iterator is open and still yields every good timer exactly once.
func TestCorruptRecordsAmongMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	const n, every = 3000, 100

	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, storagetest.Timers("g", n)...))
	require.NoError(t, s.Close())
	var kv [][]byte
	var bad []string
	for i := 0; i < n; i += every {
		id := fmt.Sprintf("g-%d-bad", i)
		bad = append(bad, id)
		kv = append(kv, []byte("t/"+id), []byte{byte(i)}) // 0 is no version either
	}
	putRaw(t, dir, kv...)

	var seen corruptions
	s, err = leveldbstore.Open(storage.Options{
		Path: dir, OnCorrupt: seen.report, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ids := iterIDs(t, s)
	require.Len(t, ids, n)
	require.ElementsMatch(t, bad, seen.IDs())
	require.Len(t, quarantined(t, s), len(bad))
	require.Len(t, iterIDs(t, s), n)
	require.Len(t, seen.IDs(), len(bad))
}

// Stopping a scan early (fn's error) leaves what it already moved aside
// moved, and the next scan moves the rest.
func TestCorruptRecordScanStoppedEarly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	putRaw(t, dir,
		[]byte("t/a"), garbage,
		[]byte("t/b"), mustEncode(t, storagetest.Timer("b", 1)),
		[]byte("t/c"), garbage,
	)
	var seen corruptions
	s, err := leveldbstore.Open(storage.Options{
		Path: dir, OnCorrupt: seen.report, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	stop := fmt.Errorf("stop")
	require.ErrorIs(t, s.Iterate(ctx, func(*skyring.Timer) error { return stop }), stop)
	require.Equal(t, []string{"a"}, seen.IDs())
	require.Equal(t, []string{"b"}, iterIDs(t, s))
	require.Equal(t, []string{"a", "c"}, seen.IDs())
}

func mustEncode(t *testing.T, tm *skyring.Timer) []byte {
	t.Helper()
	b, err := tm.MarshalBinary()
	require.NoError(t, err)
	return b
}
