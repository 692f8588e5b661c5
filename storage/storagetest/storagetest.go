// Package storagetest is the conformance suite every storage.Store, built in
// or custom, must pass, and a fault-injecting wrapper for testing code that
// uses a Store.
//
// Run the suite from a backend's own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Exercise(t, func(t *testing.T) storage.Store {
//			s, err := mystore.Open(storage.Options{Path: t.TempDir()})
//			require.NoError(t, err)
//			return s
//		})
//	}
//
// Durable backends also run ExercisePersistent. The suite closes every store
// it opens (Close must be idempotent, so an extra t.Cleanup closing it is
// harmless).
//
// This package is for tests only; non-test code must not import it.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// Timer returns a valid timer with the given id, due i milliseconds after a
// fixed instant, with an HTTP callback and string data.
func Timer(id string, i int) *skyring.Timer {
	const base = int64(1_700_000_000_000_000_000)
	return &skyring.Timer{
		ID:      id,
		Created: base,
		Due:     base + int64(i+1)*1_000_000,
		Data:    json.RawMessage(fmt.Sprintf(`"payload %d"`, i)),
		Callback: skyring.Callback{
			Transport: "http",
			Method:    "post",
			URI:       "http://127.0.0.1:9999/hook/" + id,
		},
	}
}

// Timers returns n timers with ids prefix-0 .. prefix-(n-1).
func Timers(prefix string, n int) []*skyring.Timer {
	ts := make([]*skyring.Timer, n)
	for i := range ts {
		ts[i] = Timer(fmt.Sprintf("%s-%d", prefix, i), i)
	}
	return ts
}

// Exercise runs the conformance suite. open must return a new, empty store
// for each call; subtests run in parallel, each with its own store.
func Exercise(t *testing.T, open func(t *testing.T) storage.Store) {
	t.Helper()
	setup := func(t *testing.T) storage.Store {
		t.Helper()
		s := open(t)
		require.NotNil(t, s)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := context.Background()

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		longURI := "http://example.com/" + strings.Repeat("a/b?c=d&", 1000)
		cases := []*skyring.Timer{
			{ID: "string-data", Created: 1, Due: 2, Data: json.RawMessage(`"hello"`),
				Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://x/y"}},
			{ID: "object-data", Created: -5, Due: 1 << 62,
				Data:     json.RawMessage(`{"a":[1,2,{"b":null}],"c":"d"}`),
				Callback: skyring.Callback{Transport: "http", Method: "put", URI: "http://x/y"}},
			{ID: "nil-data", Created: 1_700_000_000_000_000_000, Due: 1_700_000_000_001_000_000,
				Callback: skyring.Callback{Transport: "nats", Method: "publish", URI: "subject.a.b"}},
			{ID: "long-uri", Created: 3, Due: 4, Data: json.RawMessage(`"x"`),
				Callback: skyring.Callback{Transport: "http", Method: "post", URI: longURI}},
			{ID: "unicode", Created: 5, Due: 6,
				Data:     json.RawMessage(`"héllo wörld ☃ 😀 \u0000"`),
				Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://ünïcode.example/✓?q=日本"}},
			{ID: strings.Repeat("~", skyring.MaxIDLen), Created: 7, Due: 8,
				Callback: skyring.Callback{Transport: "t", Method: "m", URI: "u"}},
			{ID: "!", Created: 0, Due: 0},
		}
		require.NoError(t, s.Put(ctx, cases...))
		for _, want := range cases {
			got, err := s.Get(ctx, want.ID)
			require.NoError(t, err, want.ID)
			requireEqualTimer(t, want, got)
		}
		_, err := s.Get(ctx, "never-stored")
		require.ErrorIs(t, err, skyring.ErrTimerNotFound)
	})

	t.Run("PutReplaces", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		first := Timer("a", 1)
		require.NoError(t, s.Put(ctx, first))
		second := Timer("a", 2)
		second.Data = json.RawMessage(`{"v":2}`)
		second.Callback.URI = "http://other/"
		require.NoError(t, s.Put(ctx, second))
		got, err := s.Get(ctx, "a")
		require.NoError(t, err)
		requireEqualTimer(t, second, got)
		require.Equal(t, 1, count(t, s))
	})

	t.Run("PutBatch", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ts := Timers("batch", 100)
		require.NoError(t, s.Put(ctx, Timer("batch-7", 999))) // replaced by the batch
		require.NoError(t, s.Put(ctx, ts...))
		for _, want := range ts {
			got, err := s.Get(ctx, want.ID)
			require.NoError(t, err)
			requireEqualTimer(t, want, got)
		}
		require.Equal(t, len(ts), count(t, s))
		require.NoError(t, s.Put(ctx)) // nothing to do
		require.Equal(t, len(ts), count(t, s))
	})

	t.Run("PutBatchAtomic", func(t *testing.T) {
		// A batch is seen whole or not at all by a concurrent reader.
		t.Parallel()
		s := setup(t)
		const rounds, size = 20, 50
		rctx, stop := context.WithCancel(ctx)
		defer stop() // also when a require below fails
		errc := make(chan error, 1)
		go func() {
			defer close(errc)
			for rctx.Err() == nil {
				seen := map[int]int{}
				err := s.Iterate(ctx, func(tm *skyring.Timer) error {
					var round int
					if _, err := fmt.Sscanf(string(tm.Data), `"round %d"`, &round); err != nil {
						return err
					}
					seen[round]++
					return nil
				})
				if err != nil {
					errc <- err
					return
				}
				for r, n := range seen {
					if n != size {
						errc <- fmt.Errorf("round %d: saw %d of %d timers of one batch", r, n, size)
						return
					}
				}
			}
		}()
		for r := range rounds {
			ts := Timers(fmt.Sprintf("r%d", r), size)
			for _, tm := range ts {
				tm.Data = json.RawMessage(fmt.Sprintf(`"round %d"`, r))
			}
			require.NoError(t, s.Put(ctx, ts...))
		}
		stop()
		require.NoError(t, <-errc)
		require.Equal(t, rounds*size, count(t, s))
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ts := Timers("d", 10)
		require.NoError(t, s.Put(ctx, ts...))

		require.NoError(t, s.Delete(ctx, "d-0"))
		_, err := s.Get(ctx, "d-0")
		require.ErrorIs(t, err, skyring.ErrTimerNotFound)

		require.NoError(t, s.Delete(ctx, "missing"), "a missing id is not an error")
		require.NoError(t, s.Delete(ctx, "d-0"), "deleting twice is not an error")
		require.NoError(t, s.Delete(ctx), "nothing to do")

		require.NoError(t, s.Delete(ctx, "d-1", "d-2", "missing-too", "d-3"))
		for _, id := range []string{"d-1", "d-2", "d-3"} {
			_, err := s.Get(ctx, id)
			require.ErrorIs(t, err, skyring.ErrTimerNotFound, id)
		}
		require.ElementsMatch(t, []string{"d-4", "d-5", "d-6", "d-7", "d-8", "d-9"}, ids(t, s))

		// A deleted id can be stored again.
		require.NoError(t, s.Put(ctx, ts[0]))
		got, err := s.Get(ctx, "d-0")
		require.NoError(t, err)
		requireEqualTimer(t, ts[0], got)
	})

	t.Run("Iterate", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error {
			return errors.New("called on an empty store")
		}))

		const n = 10_000
		ts := Timers("it", n)
		for i := 0; i < n; i += 500 {
			require.NoError(t, s.Put(ctx, ts[i:i+500]...))
		}
		require.NoError(t, s.Delete(ctx, "it-0", "it-9999"))
		want := make(map[string]*skyring.Timer, n)
		for _, tm := range ts[1 : n-1] {
			want[tm.ID] = tm
		}
		seen := make(map[string]bool, n)
		require.NoError(t, s.Iterate(ctx, func(got *skyring.Timer) error {
			w, ok := want[got.ID]
			if !ok {
				return fmt.Errorf("unexpected timer %q", got.ID)
			}
			if seen[got.ID] {
				return fmt.Errorf("timer %q seen twice", got.ID)
			}
			seen[got.ID] = true
			requireEqualTimer(t, w, got)
			return nil
		}))
		require.Len(t, seen, len(want))

		stop := errors.New("stop here")
		calls := 0
		err := s.Iterate(ctx, func(*skyring.Timer) error {
			calls++
			if calls == 10 {
				return stop
			}
			return nil
		})
		require.ErrorIs(t, err, stop)
		require.Equal(t, 10, calls, "Iterate must stop at the first error")
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.NoError(t, s.List(ctx, "", func(*skyring.Timer) error {
			return errors.New("called on an empty store")
		}))
		// Ids whose byte order differs from their length order, one that
		// is a prefix of another, and bytes above 0x7f.
		idsIn := []string{"b", "a", "ab", "a\x00", "aa", "\xff", "~", "B", "a0", "zz", "z"}
		var ts []*skyring.Timer
		for i, id := range idsIn {
			ts = append(ts, Timer(id, i))
		}
		require.NoError(t, s.Put(ctx, ts...))
		want := slices.Clone(idsIn)
		slices.Sort(want)
		list := func(after string, max int) []string {
			var out []string
			stop := errors.New("page full")
			err := s.List(ctx, after, func(tm *skyring.Timer) error {
				out = append(out, tm.ID)
				if len(out) == max {
					return stop
				}
				return nil
			})
			if err != nil {
				require.ErrorIs(t, err, stop)
			}
			return out
		}
		require.Equal(t, want, list("", 100))
		// Page through: each page resumes after the last id seen.
		var paged []string
		for after := ""; ; {
			page := list(after, 3)
			paged = append(paged, page...)
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1]
		}
		require.Equal(t, want, paged)
		// after need not be stored; it is exclusive.
		require.Equal(t, []string{"a0", "aa", "ab", "b", "z", "zz", "~", "\xff"}, list("a\x00", 100))
		require.Equal(t, []string{"aa", "ab", "b", "z", "zz", "~", "\xff"}, list("a1", 100))
		require.Empty(t, list("\xff", 100))
		// The timers come whole.
		require.NoError(t, s.List(ctx, "", func(got *skyring.Timer) error {
			requireEqualTimer(t, ts[slices.Index(idsIn, got.ID)], got)
			return nil
		}))
		// A cancelled context stops it.
		require.NoError(t, s.Put(ctx, Timers("l", 5000)...))
		cctx, cancel := context.WithCancel(ctx)
		calls := 0
		err := s.List(cctx, "", func(*skyring.Timer) error {
			if calls++; calls == 1 {
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, calls, 5000, "List must notice a cancelled context")
	})

	t.Run("FateRoundTrip", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		tm := Timer("fate", 1)
		tm.Attempts, tm.Next = 3, 77
		tm.State, tm.Finished, tm.LastStatus, tm.LastError = skyring.StateFailed, 99, 503, "status 503"
		tm.Moves = 4
		require.NoError(t, s.Put(ctx, tm))
		got, err := s.Get(ctx, "fate")
		require.NoError(t, err)
		requireEqualTimer(t, tm, got)
	})

	t.Run("IterateCancel", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.NoError(t, s.Put(ctx, Timers("c", 5000)...))
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		calls := 0
		err := s.Iterate(cctx, func(*skyring.Timer) error {
			calls++
			if calls == 1 {
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, calls, 5000, "Iterate must notice a cancelled context")
	})

	t.Run("DoneContext", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, s.Put(cctx, Timer("x", 1)), context.Canceled)
		require.ErrorIs(t, s.SetMeta(cctx, "k", []byte("v")), context.Canceled)
		_, err := s.Get(ctx, "x")
		require.ErrorIs(t, err, skyring.ErrTimerNotFound, "a Put with a done context must not write")
		v, err := s.Meta(ctx, "k")
		require.NoError(t, err)
		require.Nil(t, v, "a SetMeta with a done context must not write")
	})

	t.Run("Meta", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		v, err := s.Meta(ctx, "node-id")
		require.NoError(t, err)
		require.Nil(t, v, "a key never set is nil, nil")

		require.NoError(t, s.SetMeta(ctx, "node-id", []byte("abc")))
		v, err = s.Meta(ctx, "node-id")
		require.NoError(t, err)
		require.Equal(t, []byte("abc"), v)

		require.NoError(t, s.SetMeta(ctx, "node-id", []byte("def")))
		v, err = s.Meta(ctx, "node-id")
		require.NoError(t, err)
		require.Equal(t, []byte("def"), v)

		require.NoError(t, s.SetMeta(ctx, "empty", nil))
		v, err = s.Meta(ctx, "empty")
		require.NoError(t, err)
		require.NotNil(t, v, "a key set to an empty value is not the same as a key never set")
		require.Empty(t, v)

		// Meta is not a timer, and a timer is not meta.
		require.NoError(t, s.SetMeta(ctx, "a", []byte("meta")))
		require.NoError(t, s.Put(ctx, Timer("b", 1)))
		_, err = s.Get(ctx, "a")
		require.ErrorIs(t, err, skyring.ErrTimerNotFound)
		v, err = s.Meta(ctx, "b")
		require.NoError(t, err)
		require.Nil(t, v)
		require.Equal(t, []string{"b"}, ids(t, s))
	})

	t.Run("ConcurrentPut", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		const writers, each = 64, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := s.Put(ctx, Timer(fmt.Sprintf("w%d-%d", w, i), i)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for w := range writers {
			for i := range each {
				got, err := s.Get(ctx, fmt.Sprintf("w%d-%d", w, i))
				require.NoError(t, err)
				requireEqualTimer(t, Timer(got.ID, i), got)
			}
		}
		require.Equal(t, writers*each, count(t, s))
	})

	t.Run("NoAliasing", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mine := Timer("alias", 1)
		mine.Data = json.RawMessage(`{"k":"v"}`)
		want := Timer("alias", 1)
		want.Data = json.RawMessage(`{"k":"v"}`)
		require.NoError(t, s.Put(ctx, mine))
		mine.Data[2] = 'X'
		mine.Due = 42
		mine.Callback.URI = "changed"

		got, err := s.Get(ctx, "alias")
		require.NoError(t, err)
		requireEqualTimer(t, want, got)

		got.Data[2] = 'Y'
		got.Created = 7
		again, err := s.Get(ctx, "alias")
		require.NoError(t, err)
		requireEqualTimer(t, want, again)

		require.NoError(t, s.Iterate(ctx, func(tm *skyring.Timer) error {
			tm.Data[2] = 'Z'
			return nil
		}))
		again, err = s.Get(ctx, "alias")
		require.NoError(t, err)
		requireEqualTimer(t, want, again)

		val := []byte("value")
		require.NoError(t, s.SetMeta(ctx, "m", val))
		val[0] = 'V'
		v, err := s.Meta(ctx, "m")
		require.NoError(t, err)
		require.Equal(t, []byte("value"), v)
		v[0] = 'W'
		v, err = s.Meta(ctx, "m")
		require.NoError(t, err)
		require.Equal(t, []byte("value"), v)
	})

	t.Run("Close", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.NoError(t, s.Put(ctx, Timer("x", 1)))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "Close is idempotent")

		require.ErrorIs(t, s.Put(ctx, Timer("y", 1)), skyring.ErrClosed)
		require.ErrorIs(t, s.Delete(ctx, "x"), skyring.ErrClosed)
		_, err := s.Get(ctx, "x")
		require.ErrorIs(t, err, skyring.ErrClosed)
		require.ErrorIs(t, s.Iterate(ctx, func(*skyring.Timer) error { return nil }), skyring.ErrClosed)
		_, err = s.Meta(ctx, "k")
		require.ErrorIs(t, err, skyring.ErrClosed)
		require.ErrorIs(t, s.SetMeta(ctx, "k", nil), skyring.ErrClosed)
	})

	t.Run("CloseConcurrent", func(t *testing.T) {
		// Calls racing with Close either succeed or fail with ErrClosed.
		t.Parallel()
		s := setup(t)
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 8*50)
		for w := range 8 {
			wg.Go(func() {
				<-start
				for i := range 50 {
					if err := s.Put(ctx, Timer(fmt.Sprintf("cc%d-%d", w, i), i)); err != nil && !errors.Is(err, skyring.ErrClosed) {
						errs <- err
					}
				}
			})
		}
		close(start)
		require.NoError(t, s.Close())
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})
}

// ExercisePersistent runs the durability suite for backends that keep data
// across a close: open must open (creating if needed) the store in dir, and
// return its error as is.
func ExercisePersistent(t *testing.T, open func(t *testing.T, dir string) (storage.Store, error)) {
	t.Helper()
	ctx := context.Background()
	mustOpen := func(t *testing.T, dir string) storage.Store {
		t.Helper()
		s, err := open(t, dir)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := mustOpen(t, dir)
		ts := Timers("p", 1000)
		require.NoError(t, s.Put(ctx, ts[:500]...))
		for _, tm := range ts[500:] {
			require.NoError(t, s.Put(ctx, tm))
		}
		require.NoError(t, s.SetMeta(ctx, "node-id", []byte("n1")))
		require.NoError(t, s.Close())

		s = mustOpen(t, dir)
		for _, want := range ts {
			got, err := s.Get(ctx, want.ID)
			require.NoError(t, err)
			requireEqualTimer(t, want, got)
		}
		require.Equal(t, len(ts), count(t, s))
		v, err := s.Meta(ctx, "node-id")
		require.NoError(t, err)
		require.Equal(t, []byte("n1"), v)

		require.NoError(t, s.Delete(ctx, "p-0"))
		require.NoError(t, s.Delete(ctx, "p-1", "p-2"))
		require.NoError(t, s.Close())

		s = mustOpen(t, dir)
		for _, id := range []string{"p-0", "p-1", "p-2"} {
			_, err := s.Get(ctx, id)
			require.ErrorIs(t, err, skyring.ErrTimerNotFound, id)
		}
		require.Equal(t, len(ts)-3, count(t, s))
	})

	t.Run("Locked", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := mustOpen(t, dir)
		second, err := open(t, dir)
		if second != nil {
			_ = second.Close()
		}
		require.ErrorIs(t, err, storage.ErrLocked)
		require.Contains(t, err.Error(), dir)

		// The first store is unaffected, and closing it frees the directory.
		require.NoError(t, s.Put(ctx, Timer("x", 1)))
		require.NoError(t, s.Close())
		s = mustOpen(t, dir)
		_, err = s.Get(ctx, "x")
		require.NoError(t, err)
	})
}

func requireEqualTimer(t *testing.T, want, got *skyring.Timer) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Created, got.Created, want.ID)
	require.Equal(t, want.Due, got.Due, want.ID)
	require.Equal(t, want.Callback, got.Callback, want.ID)
	require.Equal(t, want.Attempts, got.Attempts, want.ID)
	require.Equal(t, want.Next, got.Next, want.ID)
	require.Equal(t, want.State, got.State, want.ID)
	require.Equal(t, want.Finished, got.Finished, want.ID)
	require.Equal(t, want.LastStatus, got.LastStatus, want.ID)
	require.Equal(t, want.LastError, got.LastError, want.ID)
	require.Equal(t, want.Moves, got.Moves, want.ID)
	if len(want.Data) == 0 {
		require.Empty(t, got.Data, want.ID)
	} else {
		require.Equal(t, string(want.Data), string(got.Data), want.ID)
	}
}

func ids(t *testing.T, s storage.Store) []string {
	t.Helper()
	var out []string
	require.NoError(t, s.Iterate(context.Background(), func(tm *skyring.Timer) error {
		out = append(out, tm.ID)
		return nil
	}))
	return out
}

func count(t *testing.T, s storage.Store) int {
	t.Helper()
	return len(ids(t, s))
}
