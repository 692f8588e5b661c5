package storage_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := storage.NewRegistry()
	require.Empty(t, r.Names())
	_, err := r.Open("memory", storage.Options{})
	require.ErrorIs(t, err, storage.ErrUnknownBackend)
	require.EqualError(t, err, `storage: unknown backend "memory"; known: none`)

	var got storage.Options
	open := func(opts storage.Options) (storage.Store, error) {
		got = opts
		return memstore.New(), nil
	}
	require.NoError(t, r.Register("b", open, "bee"))
	require.NoError(t, r.Register("a", open))
	require.Equal(t, []string{"a", "b"}, r.Names())

	opts := storage.Options{Path: "/p", NoSync: true, Extra: map[string][]string{"k": {"v1", "v2"}}}
	s, err := r.Open("bee", opts)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.Equal(t, opts, got, "the Opener gets the options as given")

	_, err = r.Open("c", storage.Options{})
	require.ErrorIs(t, err, storage.ErrUnknownBackend)
	require.EqualError(t, err, `storage: unknown backend "c"; known: a, b (bee)`)
	_, err = r.Open("B", storage.Options{})
	require.ErrorIs(t, err, storage.ErrUnknownBackend, "names are matched exactly")
}

func TestRegistryRegisterErrors(t *testing.T) {
	t.Parallel()
	open := func(storage.Options) (storage.Store, error) { return memstore.New(), nil }
	r := storage.NewRegistry()
	require.NoError(t, r.Register("leveldb", open, "leveldown"))

	for _, tc := range []struct {
		name    string
		aliases []string
	}{
		{"leveldb", nil},                 // name taken by a name
		{"leveldown", nil},               // name taken by an alias
		{"x", []string{"leveldb"}},       // alias taken by a name
		{"y", []string{"leveldown"}},     // alias taken by an alias
		{"z", []string{"z"}},             // alias repeats the name
		{"w", []string{"w2", "w2"}},      // alias given twice
		{"v", []string{"v1", "leveldb"}}, // nothing is registered on failure
	} {
		err := r.Register(tc.name, open, tc.aliases...)
		require.ErrorIs(t, err, storage.ErrDuplicateBackend, tc.name)
	}
	require.Equal(t, []string{"leveldb"}, r.Names())
	_, err := r.Open("v1", storage.Options{})
	require.ErrorIs(t, err, storage.ErrUnknownBackend, "a failed Register must not leave aliases behind")

	require.Error(t, r.Register("", open))
	require.Error(t, r.Register("nil", nil))
	require.Error(t, r.Register("e", open, ""))
	require.NotErrorIs(t, r.Register("", open), storage.ErrDuplicateBackend)
}

func TestRegistryOpenErrors(t *testing.T) {
	t.Parallel()
	r := storage.NewRegistry()
	boom := errors.New("boom")
	require.NoError(t, r.Register("fails", func(storage.Options) (storage.Store, error) { return nil, boom }))
	require.NoError(t, r.Register("nil", func(storage.Options) (storage.Store, error) { return nil, nil }))
	require.NoError(t, r.Register("locked", func(o storage.Options) (storage.Store, error) {
		return nil, &storage.LockedError{Path: o.Path}
	}))

	_, err := r.Open("fails", storage.Options{})
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, `"fails"`)

	_, err = r.Open("nil", storage.Options{})
	require.ErrorContains(t, err, "nil Store")

	_, err = r.Open("locked", storage.Options{Path: "/data"})
	require.ErrorIs(t, err, storage.ErrLocked)
	require.ErrorContains(t, err, "storage: data directory /data is in use by another process")
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r := storage.NewRegistry()
	open := func(storage.Options) (storage.Store, error) { return memstore.New(), nil }
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Go(func() {
			if r.Register("same", open) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
			_, _ = r.Open("same", storage.Options{})
			_ = r.Names()
		})
	}
	wg.Wait()
	require.Equal(t, 1, ok, "exactly one of the racing Registers wins")
}

func TestLockedError(t *testing.T) {
	t.Parallel()
	cause := errors.New("resource temporarily unavailable")
	err := error(&storage.LockedError{Path: "/d", Err: cause})
	require.ErrorIs(t, err, storage.ErrLocked)
	require.ErrorIs(t, err, cause)
	require.EqualError(t, err, "storage: data directory /d is in use by another process")
}

// A backend takes path, nosync and backend, and only the further options it
// declares: anything else is refused, naming the key and a close one.
func TestRegistryOptions(t *testing.T) {
	t.Parallel()
	r := storage.NewRegistry()
	open := func(storage.Options) (storage.Store, error) { return memstore.New(), nil }
	require.NoError(t, r.Register("plain", open, "pl"))
	require.NoError(t, r.Register("scylla", open, "scylladown"))
	require.ErrorIs(t, r.DeclareOptions("nope", "x"), storage.ErrUnknownBackend)
	require.Error(t, r.DeclareOptions("scylla", ""))
	require.NoError(t, r.DeclareOptions("scylladown", "contactPoints"))
	require.NoError(t, r.DeclareOptions("scylla", "keyspace", "contactPoints"))

	keys, ok := r.OptionKeys("pl")
	require.True(t, ok)
	require.Equal(t, []string{"backend", "nosync", "path"}, keys)
	keys, ok = r.OptionKeys("scylladown")
	require.True(t, ok)
	require.Equal(t, []string{"backend", "contactPoints", "keyspace", "nosync", "path"}, keys)
	_, ok = r.OptionKeys("nope")
	require.False(t, ok)

	require.NoError(t, r.CheckOptions("plain", nil))
	require.NoError(t, r.CheckOptions("scylla", map[string][]string{"contactPoints": {"a"}, "keyspace": {"k"}}))
	require.NoError(t, r.CheckOptions("nope", map[string][]string{"anything": {"a"}}), "Open reports an unknown backend")

	err := r.CheckOptions("plain", map[string][]string{"paht": {"/x"}, "nosynk": {""}, "zzz": {"1"}})
	require.ErrorIs(t, err, storage.ErrUnknownOption)
	require.EqualError(t, err, `storage: unknown option "nosynk" (did you mean "nosync"?), "paht" (did you mean "path"?), "zzz" for backend "plain"; known: backend, nosync, path`)
	var uo *storage.UnknownOptionError
	require.True(t, errors.As(err, &uo))
	require.Equal(t, []string{"nosynk", "paht", "zzz"}, uo.Keys)
	require.Equal(t, "plain", uo.Backend)

	err = r.CheckOptions("scylla", map[string][]string{"contactPoint": {"a"}})
	require.ErrorIs(t, err, storage.ErrUnknownOption)
	require.Contains(t, err.Error(), `"contactPoint" (did you mean "contactPoints"?)`)
}

func TestClosest(t *testing.T) {
	t.Parallel()
	known := []string{"backend", "nosync", "path"}
	for in, want := range map[string]string{
		"paht": "path", "pth": "path", "path": "path", "nosynk": "nosync", "no-sync": "nosync",
		"backnd": "backend", "xyz": "", "p": "", "contactPoints": "",
	} {
		require.Equal(t, want, storage.Closest(in, known), in)
	}
}
