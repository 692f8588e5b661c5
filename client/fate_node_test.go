// These tests run List, Retry and ListAll through both clients against a
// real node (fate_test.go runs them against a double behind the real
// edges).

package client_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
)

// waitState polls Get until the timer id is in state, for at most 10s, and
// returns its Info.
func waitState(t *testing.T, c client.Client, id, state string) skyring.Info {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Get(context.Background(), id)
		if err == nil && info.State == state {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer %q not %s within 10s: %+v, %v", id, state, info, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNodeListAndRetry(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"http", "nats"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			var c client.Client = b.natsClient(t)
			if name == "http" {
				c = b.httpClient(t)
			}
			// Timers whose id starts with "f" fail while failing is set.
			var failing atomic.Bool
			failing.Store(true)
			b.rec.SetFunc(func(_ context.Context, tm *skyring.Timer) error {
				if strings.HasPrefix(tm.ID, "f") && failing.Load() {
					return errors.New("receiver down")
				}
				return nil
			})
			once := client.Callback{Transport: recName, Method: "post", URI: "rec://sink", Retry: skyring.Retry{Attempts: 1}}
			twice := once
			twice.Retry = skyring.Retry{Attempts: 2, MinBackoff: 60_000, MaxBackoff: 60_000}
			create := func(id string, timeout time.Duration, cb client.Callback) {
				t.Helper()
				_, err := c.Create(ctx, client.TimerSpec{ID: id, Timeout: timeout, Callback: cb})
				require.NoError(t, err, id)
			}
			// f0-f2 fail at once (one attempt), fr fails once and waits a
			// minute for its second attempt, d0-d1 are delivered, p0-p2
			// pend for a minute.
			for _, id := range []string{"f0", "f1", "f2", "d0", "d1"} {
				create(id, time.Millisecond, once)
			}
			create("fr", time.Millisecond, twice)
			for _, id := range []string{"p0", "p1", "p2"} {
				create(id, time.Minute, recCallback)
			}
			for _, id := range []string{"f0", "f1", "f2"} {
				info := waitState(t, c, id, skyring.StateNameFailed)
				require.Equal(t, 1, info.Attempts)
				require.Contains(t, info.LastError, "receiver down")
				require.NotZero(t, info.FinishedAt)
			}
			waitState(t, c, "d0", skyring.StateNameDelivered)
			waitState(t, c, "d1", skyring.StateNameDelivered)
			fr := waitState(t, c, "fr", skyring.StateNameRetrying)
			require.NotZero(t, fr.NextAttempt)
			require.NoError(t, c.Cancel(ctx, "p2"))
			waitState(t, c, "p2", skyring.StateNameCancelled)

			all := []string{"d0", "d1", "f0", "f1", "f2", "fr", "p0", "p1", "p2"}
			page, err := c.List(ctx, skyring.ListQuery{})
			require.NoError(t, err)
			require.Equal(t, all, infoIDs(page.Timers))
			require.Empty(t, page.Cursor)
			for _, limit := range []int{1, 2, 4, 100} {
				var got []string
				require.NoError(t, client.ListAll(ctx, c, skyring.ListQuery{Limit: limit}, func(i skyring.Info) error {
					got = append(got, i.ID)
					return nil
				}))
				require.Equal(t, all, got, "limit %d", limit)
			}
			for state, want := range map[string][]string{
				skyring.StateNameFailed:    {"f0", "f1", "f2"},
				skyring.StateNameRetrying:  {"fr"},
				skyring.StateNameDelivered: {"d0", "d1"},
				skyring.StateNamePending:   {"p0", "p1"},
				skyring.StateNameCancelled: {"p2"},
			} {
				var got []string
				require.NoError(t, client.ListAll(ctx, c, skyring.ListQuery{State: state, Limit: 2}, func(i skyring.Info) error {
					require.Equal(t, state, i.State)
					require.Equal(t, b.node.ID(), i.Node)
					got = append(got, i.ID)
					return nil
				}))
				require.Equal(t, want, got, "state %s", state)
			}

			// Retry a dead letter once the receiver is back: delivered.
			failing.Store(false)
			require.NoError(t, c.Retry(ctx, "f1"))
			info := waitState(t, c, "f1", skyring.StateNameDelivered)
			require.NotZero(t, info.DeliveredAt)
			// Only failed timers can be retried.
			for _, id := range []string{"f1", "fr", "d0", "p0", "p2"} {
				require.ErrorIs(t, c.Retry(ctx, id), skyring.ErrNotFailed, id)
			}
			require.ErrorIs(t, c.Retry(ctx, "nope"), skyring.ErrTimerNotFound)
			page, err = c.List(ctx, skyring.ListQuery{State: skyring.StateNameFailed})
			require.NoError(t, err)
			require.Equal(t, []string{"f0", "f2"}, infoIDs(page.Timers))
		})
	}
}
