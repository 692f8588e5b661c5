package builtin_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/builtin"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// goleveldb's (*DB).mpoolDrain outlives Close by up to a second.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

func TestDefault(t *testing.T) {
	t.Parallel()
	r := builtin.Default()
	require.Equal(t, []string{"leveldb", "memory"}, r.Names())

	for _, name := range []string{"leveldb", "leveldown", "goleveldb"} {
		dir := filepath.Join(t.TempDir(), "data")
		s, err := r.Open(name, storage.Options{Path: dir})
		require.NoError(t, err, name)
		require.IsType(t, &leveldbstore.Store{}, s)
		require.NoError(t, s.Put(context.Background(), storagetest.Timer("a", 1)))
		require.NoError(t, s.Close())

		// Locked errors come through the registry unchanged in kind.
		s1, err := r.Open(name, storage.Options{Path: dir})
		require.NoError(t, err)
		_, err = r.Open(name, storage.Options{Path: dir})
		require.ErrorIs(t, err, storage.ErrLocked)
		require.NoError(t, s1.Close())
	}
	for _, name := range []string{"memory", "memdown", "mem"} {
		s, err := r.Open(name, storage.Options{})
		require.NoError(t, err, name)
		require.IsType(t, &memstore.Store{}, s)
		require.NoError(t, s.Close())
	}

	_, err := r.Open("leveldb", storage.Options{})
	require.ErrorContains(t, err, "no path")

	_, err = r.Open("redis", storage.Options{})
	require.ErrorIs(t, err, storage.ErrUnknownBackend)
	require.EqualError(t, err, `storage: unknown backend "redis"; known: leveldb (goleveldb, leveldown), memory (mem, memdown)`)
}

func TestRegisterTwice(t *testing.T) {
	t.Parallel()
	r := builtin.Default()
	require.ErrorIs(t, builtin.Register(r), storage.ErrDuplicateBackend)
	require.Equal(t, []string{"leveldb", "memory"}, r.Names())
}
