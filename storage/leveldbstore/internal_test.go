package leveldbstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
	lverrors "github.com/syndtr/goleveldb/leveldb/errors"
	lvstorage "github.com/syndtr/goleveldb/leveldb/storage"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/storagetest"
)

// The on-disk layout is a contract with older and newer versions of the
// node: "t/"+id holds Timer.AppendBinary, "m/"+key holds the meta value.
func TestLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(storage.Options{Path: dir})
	require.NoError(t, err)
	tm := storagetest.Timer("id-1", 1)
	require.NoError(t, s.Put(ctx, tm))
	require.NoError(t, s.SetMeta(ctx, "node", []byte("n1")))
	require.NoError(t, s.Close())

	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	want, err := tm.MarshalBinary()
	require.NoError(t, err)
	got, err := db.Get([]byte("t/id-1"), nil)
	require.NoError(t, err)
	require.Equal(t, want, got)
	got, err = db.Get([]byte("m/node"), nil)
	require.NoError(t, err)
	require.Equal(t, []byte("n1"), got)

	keys := 0
	it := db.NewIterator(nil, nil)
	for it.Next() {
		keys++
	}
	it.Release()
	require.Equal(t, 2, keys)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	o := levelOptions()
	require.False(t, o.NoWriteMerge, "group commit depends on write merge")
	require.False(t, o.NoSync)
	require.Equal(t, 8<<20, o.BlockCacheCapacity)
	require.Equal(t, 8<<20, o.WriteBuffer)
}

// failList makes goleveldb's table listing fail, which only Recover uses.
type failList struct {
	lvstorage.Storage
	err error
}

func (f failList) List(ft lvstorage.FileType) ([]lvstorage.FileDesc, error) {
	if ft == lvstorage.TypeTable {
		return nil, f.err
	}
	return f.Storage.List(ft)
}

func corruptManifest(t *testing.T, dir string) {
	t.Helper()
	s, err := Open(storage.Options{Path: dir})
	require.NoError(t, err)
	require.NoError(t, s.Put(context.Background(), storagetest.Timer("a", 1)))
	require.NoError(t, s.Close())
	ms, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	require.NoError(t, err)
	for _, m := range ms {
		require.NoError(t, os.WriteFile(m, []byte("garbage"), 0o644))
	}
}

func TestRecoverLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	corruptManifest(t, dir)
	var logs bytes.Buffer
	s, err := open(storage.Options{Path: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, hooks{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.Contains(t, logs.String(), "recovering")
	require.Contains(t, logs.String(), "recovered")
}

func TestRecoverFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	corruptManifest(t, dir)
	boom := errors.New("disk on fire")
	var logs bytes.Buffer
	_, err := open(storage.Options{Path: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, hooks{
		wrap: func(s lvstorage.Storage) lvstorage.Storage { return failList{s, boom} },
	})
	require.ErrorIs(t, err, boom)
	var corrupted *lverrors.ErrCorrupted
	require.ErrorAs(t, err, &corrupted, "the corruption is wrapped too")
	require.ErrorContains(t, err, "database corrupted")
	require.ErrorContains(t, err, "recovery failed")
	require.ErrorContains(t, err, dir)

	// The failed open released the directory lock.
	s, err := Open(storage.Options{Path: dir})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// A record replaced since the scan's snapshot is not moved aside: the move
// checks, under moveMu, that the record is still the one that did not
// decode.
func TestMoveAsideSkipsReplacedRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reported := 0
	s, err := Open(storage.Options{
		Path: t.TempDir(), Logger: slog.New(slog.DiscardHandler),
		OnCorrupt: func(string, error) { reported++ },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	bad := []byte{99}
	require.NoError(t, s.db.Put([]byte("t/x"), bad, nil))
	require.NoError(t, s.Put(ctx, storagetest.Timer("x", 1))) // a writer fixed it

	derr := fmt.Errorf("%w: test", skyring.ErrCorrupt)
	require.NoError(t, s.moveAside([]byte("t/x"), bad, derr))
	got, err := s.Get(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, "x", got.ID)

	require.NoError(t, s.Delete(ctx, "x")) // and one removed it
	require.NoError(t, s.moveAside([]byte("t/x"), bad, derr))
	_, err = s.Get(ctx, "x")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)

	require.Zero(t, reported)
	require.NoError(t, s.Quarantined(ctx, func(id string, _ []byte) error {
		return errors.New("nothing should be quarantined: " + id)
	}))
}
