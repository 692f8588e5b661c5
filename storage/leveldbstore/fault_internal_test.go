package leveldbstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
	lvstorage "github.com/syndtr/goleveldb/leveldb/storage"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/storagetest"
)

// errEIO is what the faulty journal's fsync fails with.
var errEIO = fmt.Errorf("sync journal (injected): %w", syscall.EIO)

// faultyFS is goleveldb's real file storage whose journal fsyncs fail while
// failSync is set: the disk error a synced write must never hide.
type faultyFS struct {
	lvstorage.Storage
	failSync *atomic.Bool
}

func (f faultyFS) Create(fd lvstorage.FileDesc) (lvstorage.Writer, error) {
	w, err := f.Storage.Create(fd)
	if err != nil || fd.Type != lvstorage.TypeJournal {
		return w, err
	}
	return faultyWriter{w, f.failSync}, nil
}

type faultyWriter struct {
	lvstorage.Writer
	failSync *atomic.Bool
}

func (w faultyWriter) Sync() error {
	if w.failSync.Load() {
		return errEIO
	}
	return w.Writer.Sync()
}

func openFaulty(t *testing.T, opts storage.Options) (*Store, *atomic.Bool) {
	t.Helper()
	failSync := new(atomic.Bool)
	s, err := open(opts, hooks{
		wrap: func(s lvstorage.Storage) lvstorage.Storage { return faultyFS{s, failSync} },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, failSync
}

// A failed fsync is reported as storage.ErrWrite with its cause, and the
// store refuses every later write, even once the disk "works" again, until
// it is reopened. Reads go on.
func TestWriteFailureLatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, failSync := openFaulty(t, storage.Options{Path: dir})
	require.NoError(t, s.Put(ctx, storagetest.Timer("kept", 1)))
	require.NoError(t, s.SetMeta(ctx, "node-id", []byte("n1")))

	failSync.Store(true)
	err := s.Put(ctx, storagetest.Timer("failed", 1))
	require.ErrorIs(t, err, storage.ErrWrite)
	require.ErrorIs(t, err, syscall.EIO, "the cause stays reachable")
	require.ErrorContains(t, err, `put "failed"`)

	failSync.Store(false) // a retried fsync may well "succeed": it proves nothing
	for name, write := range map[string]func() error{
		"put":       func() error { return s.Put(ctx, storagetest.Timer("later", 1)) },
		"put batch": func() error { return s.Put(ctx, storagetest.Timers("later", 3)...) },
		"delete":    func() error { return s.Delete(ctx, "kept") },
		"delete 2":  func() error { return s.Delete(ctx, "kept", "other") },
		"set meta":  func() error { return s.SetMeta(ctx, "node-id", []byte("n2")) },
	} {
		err := write()
		require.ErrorIs(t, err, storage.ErrWrite, name)
		require.ErrorIs(t, err, syscall.EIO, name)
		require.ErrorContains(t, err, "earlier write failed", name)
	}

	// Reads answer from what was acknowledged.
	got, err := s.Get(ctx, "kept")
	require.NoError(t, err)
	require.Equal(t, "kept", got.ID)
	_, err = s.Get(ctx, "later")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)
	v, err := s.Meta(ctx, "node-id")
	require.NoError(t, err)
	require.Equal(t, []byte("n1"), v)
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Equal(t, 1, n)

	// Nothing that was refused is an ErrWrite-free success; a closed store
	// says closed, not write failed.
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Put(ctx, storagetest.Timer("x", 1)), skyring.ErrClosed)

	// Reopened, the store writes again and kept every acknowledged write.
	s2, err := Open(storage.Options{Path: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	_, err = s2.Get(ctx, "kept")
	require.NoError(t, err)
	v, err = s2.Meta(ctx, "node-id")
	require.NoError(t, err)
	require.Equal(t, []byte("n1"), v)
	require.NoError(t, s2.Put(ctx, storagetest.Timer("after", 1)))
}

// Every writer of a group commit whose fsync fails hears of it.
func TestWriteFailureConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, failSync := openFaulty(t, storage.Options{Path: t.TempDir()})
	failSync.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range cap(errs) {
		wg.Go(func() { errs <- s.Put(ctx, storagetest.Timer(fmt.Sprintf("w%d", i), i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, storage.ErrWrite)
	}
}

// Errors that mean nothing was attempted are not write failures and do not
// latch the store.
func TestNotWriteFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openFaulty(t, storage.Options{Path: t.TempDir()})
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.NotErrorIs(t, s.Put(done, storagetest.Timer("a", 1)), storage.ErrWrite)
	require.NotErrorIs(t, s.Put(ctx, nil), storage.ErrWrite)
	require.NoError(t, s.Put(ctx, storagetest.Timer("a", 1)))
}

// If the record cannot be moved aside, the scan stops with the write
// failure (the node must stop), and the record stays where it was.
func TestCorruptRecordMoveFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	require.NoError(t, db.Put([]byte("t/bad"), []byte{99}, nil))
	require.NoError(t, db.Close())

	reported := 0
	s, failSync := openFaulty(t, storage.Options{
		Path: dir, Logger: slog.New(slog.DiscardHandler),
		OnCorrupt: func(string, error) { reported++ },
	})
	failSync.Store(true)
	err = s.Iterate(ctx, func(*skyring.Timer) error { return nil })
	require.ErrorIs(t, err, storage.ErrWrite)
	require.ErrorContains(t, err, "t/bad")
	require.Zero(t, reported)
	v, err := s.db.Get([]byte("t/bad"), nil)
	require.NoError(t, err)
	require.Equal(t, []byte{99}, v)
	ok, err := s.db.Has([]byte("q/t/bad"), nil)
	require.NoError(t, err)
	require.False(t, ok)
}
