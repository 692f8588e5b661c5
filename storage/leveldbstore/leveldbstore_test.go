package leveldbstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/storagetest"
)

var _ storage.Store = (*leveldbstore.Store)(nil)

// ignoreGoleveldb is the goleak options for tests that use goleveldb.
// (*DB).mpoolDrain outlives Close by up to a second (it waits for its pool
// to drain); every other goroutine of a DB stops before Close returns, so a
// store left open is still reported.
var ignoreGoleveldb = goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, ignoreGoleveldb) }

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Exercise(t, func(t *testing.T) storage.Store {
		s, err := leveldbstore.Open(storage.Options{Path: t.TempDir()})
		require.NoError(t, err)
		return s
	})
}

func TestConformanceNoSync(t *testing.T) {
	t.Parallel()
	storagetest.Exercise(t, func(t *testing.T) storage.Store {
		s, err := leveldbstore.Open(storage.Options{Path: t.TempDir(), NoSync: true})
		require.NoError(t, err)
		return s
	})
}

func TestPersistent(t *testing.T) {
	t.Parallel()
	storagetest.ExercisePersistent(t, func(_ *testing.T, dir string) (storage.Store, error) {
		s, err := leveldbstore.Open(storage.Options{Path: dir})
		if err != nil {
			return nil, err // not a typed nil
		}
		return s, nil
	})
}

func TestOpenCreatesDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b", "data")
	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.Equal(t, dir, s.Path())
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.True(t, fi.IsDir())
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	_, err := leveldbstore.Open(storage.Options{})
	require.ErrorContains(t, err, "no path")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	_, err = leveldbstore.Open(storage.Options{Path: file})
	require.Error(t, err)
	require.NotErrorIs(t, err, storage.ErrLocked)
}

func TestLockedSameProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	_, err = leveldbstore.Open(storage.Options{Path: dir})
	require.ErrorIs(t, err, storage.ErrLocked)
	var le *storage.LockedError
	require.ErrorAs(t, err, &le)
	require.Equal(t, dir, le.Path)
	require.EqualError(t, err, fmt.Sprintf("storage: data directory %s is in use by another process", dir))
}

const helperEnv = "LEVELDBSTORE_TEST_LOCKED_DIR"

// TestLockedOtherProcess opens a directory, then runs this test binary
// again (TestHelperOpenLocked) to open the same directory from a second
// process, which must fail at once with ErrLocked.
func TestLockedOtherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperOpenLocked$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "locked=true")
	require.Contains(t, string(out), fmt.Sprintf("storage: data directory %s is in use by another process", dir))

	// Once the first store closes, the other process can open it.
	require.NoError(t, s.Close())
	cmd = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperOpenLocked$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "opened")
}

func TestHelperOpenLocked(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestLockedOtherProcess")
	}
	s, err := leveldbstore.Open(storage.Options{Path: dir})
	if err != nil {
		fmt.Printf("locked=%v err=%v\n", errors.Is(err, storage.ErrLocked), err)
		return
	}
	fmt.Println("opened")
	require.NoError(t, s.Close())
}

// A missing or garbled manifest is rebuilt from the table and journal files.
func TestCorruptManifestRecovered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	ts := storagetest.Timers("c", 200)
	require.NoError(t, s.Put(ctx, ts...))
	require.NoError(t, s.Close())

	manifests, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	require.NoError(t, err)
	require.NotEmpty(t, manifests)
	for _, m := range manifests {
		require.NoError(t, os.WriteFile(m, []byte("this is not a manifest"), 0o644))
	}

	s, err = leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { n++; return nil }))
	require.Equal(t, len(ts), n)
	got, err := s.Get(ctx, "c-42")
	require.NoError(t, err)
	require.Equal(t, ts[42].Due, got.Due)
}

// Values written with NoSync are still there after a clean close.
func TestNoSyncReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := leveldbstore.Open(storage.Options{Path: dir, NoSync: true})
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, storagetest.Timer("a", 1)))
	require.NoError(t, s.Close())
	s, err = leveldbstore.Open(storage.Options{Path: dir, NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Get(ctx, "a")
	require.NoError(t, err)
}
