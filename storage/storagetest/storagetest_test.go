package storagetest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// goleveldb's (*DB).mpoolDrain outlives Close by up to a second.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"))
}

// The wrapper itself must pass the suite while healthy.
func TestFlakyConformance(t *testing.T) {
	t.Parallel()
	storagetest.Exercise(t, func(*testing.T) storage.Store {
		return storagetest.Flaky(memstore.New())
	})
}

func TestFlaky(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := memstore.New()
	f := storagetest.Flaky(inner)
	t.Cleanup(func() { _ = f.Close() })

	require.NoError(t, f.Put(ctx, storagetest.Timer("a", 1)))

	boom := errors.New("disk full")
	f.Fail(boom)
	require.ErrorIs(t, f.Put(ctx, storagetest.Timer("b", 1)), boom)
	require.ErrorIs(t, f.Delete(ctx, "a"), boom)
	require.ErrorIs(t, f.SetMeta(ctx, "k", []byte("v")), boom)
	require.Equal(t, 3, f.Failed())

	// Nothing was written, and reads still work.
	_, err := inner.Get(ctx, "b")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)
	_, err = f.Get(ctx, "a")
	require.NoError(t, err, "the failed Delete must not have deleted")
	v, err := f.Meta(ctx, "k")
	require.NoError(t, err)
	require.Nil(t, v)

	f.Fail(nil)
	require.ErrorIs(t, f.Put(ctx, storagetest.Timer("b", 1)), storagetest.ErrInjected)

	f.Recover()
	require.NoError(t, f.Put(ctx, storagetest.Timer("b", 1)))
	_, err = inner.Get(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, 4, f.Failed())
}
