package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/storagetest"
	"github.com/skyring/skyring/transports/transportstest"
	"github.com/skyring/skyring/wheel"
)

// setupShared starts a single node on the jetstream backend (R1, its
// embedded NATS server carrying JetStream, files under a temporary
// directory), its store wrapped in a FlakyStore the test breaks at will.
func setupShared(t *testing.T) (*bundle, *storagetest.FlakyStore) {
	t.Helper()
	var flaky *storagetest.FlakyStore
	b := &bundle{clock: wheel.NewFakeClock(t0), rec: transportstest.NewRecorder("rec")}
	n, err := node.New(node.WithOptions(node.Options{
		HTTPAddr:       "127.0.0.1:0",
		NATSPort:       -1,
		ChannelPort:    -1,
		StorageBackend: node.JetStreamBackend,
		StoragePath:    t.TempDir(),
		StorageNoSync:  true, // the test is about outcomes, not fsync
		Transports:     []string{"http"},
		Clock:          b.clock,
		Logger:         testLogger(t),
		Faults: node.Faults{WrapStore: func(s storage.Store) storage.Store {
			flaky = storagetest.Flaky(s)
			return flaky
		}},
	}), node.WithTransport(b.rec))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, n.Start(ctx))
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	require.NotNil(t, flaky, "the node wrapped its store")
	b.node, b.store = n, flaky
	return b, flaky
}

// A create whose write the shared store did not confirm may have landed:
// its retry must not hear 409 ("stored") while the store cannot say
// whether it did. It hears 503 (retry); once the store answers and has
// nothing under the id, the retry stores it, and it fires once.
func TestSharedCreateRetryWhileStoreUnreadable(t *testing.T) {
	t.Parallel()
	b, flaky := setupShared(t)
	ctx := context.Background()
	tm := b.timer(t, "maybe", time.Second, "payload")

	flaky.FailWrites(nil) // matches storage.ErrWrite: the outcome is unknown
	err := b.node.Create(ctx, tm)
	require.ErrorIs(t, err, skyring.ErrOwnerTimeout, "an unconfirmed write is a 504: retry with the same id")

	flaky.FailReads(nil)
	err = b.node.Create(ctx, b.timer(t, "maybe", time.Second, "payload"))
	require.Error(t, err)
	require.NotErrorIs(t, err, skyring.ErrTimerExists, "a 409 would say the first try was stored")
	require.ErrorIs(t, err, skyring.ErrNoOwner, "503: the store cannot say; retry")

	flaky.Recover()
	require.NoError(t, b.node.Create(ctx, b.timer(t, "maybe", time.Second, "payload")),
		"nothing landed: the retry stores it")
	require.ErrorIs(t, b.node.Create(ctx, b.timer(t, "maybe", time.Second, "payload")), skyring.ErrTimerExists,
		"now it is stored: 409")
	info, err := b.node.Get(ctx, "maybe")
	require.NoError(t, err)
	require.Equal(t, "pending", info.State)

	b.advanceTo(t, tm.DueTime().Add(time.Second))
	fired := b.rec.Wait(t, 1)
	require.Equal(t, "maybe", fired[0].ID)
	require.Equal(t, quote("payload"), string(fired[0].Data))
	require.Eventually(t, func() bool {
		info, err := b.node.Get(ctx, "maybe")
		return err == nil && info.State == "delivered"
	}, 10*time.Second, 10*time.Millisecond, "the delivery's outcome is written to the stream")
	require.Equal(t, 1, b.rec.Count(), "delivered once")
}

// A create whose write was not confirmed but did land is found by its
// retry: 409, and the timer fires once, with the first try's body.
func TestSharedCreateRetryFindsLandedWrite(t *testing.T) {
	t.Parallel()
	b, flaky := setupShared(t)
	ctx := context.Background()
	tm := b.timer(t, "landed", time.Second, "first")
	require.NoError(t, b.node.Create(ctx, tm))

	// The stored timer answers a retry with 409 whether or not the
	// store can be read meanwhile; while it cannot, the answer is 503.
	flaky.FailReads(nil)
	require.ErrorIs(t, b.node.Create(ctx, b.timer(t, "landed", time.Second, "second")), skyring.ErrNoOwner)
	flaky.Recover()
	require.ErrorIs(t, b.node.Create(ctx, b.timer(t, "landed", time.Second, "second")), skyring.ErrTimerExists)

	b.advanceTo(t, tm.DueTime().Add(time.Second))
	fired := b.rec.Wait(t, 1)
	require.Equal(t, quote("first"), string(fired[0].Data))
}
