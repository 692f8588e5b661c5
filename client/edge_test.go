package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
)

// TestPathLikeIDs: ids that are path segments of their own ("." and "..")
// and the longest id, each on its own node so that both clients can use the
// same id.
func TestPathLikeIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, nc := range []string{"http", "nats"} {
		t.Run(nc, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := b.natsClient(t)
			var cl client.Client = c
			if nc == "http" {
				cl = b.httpClient(t)
			}
			for _, id := range []string{".", "..", "...", strings.Repeat("z", skyring.MaxIDLen)} {
				s := spec("x")
				s.ID = id
				got, err := cl.Create(ctx, s)
				require.NoError(t, err, "id %q", id)
				require.Equal(t, id, got)
				info, err := cl.Get(ctx, id)
				require.NoError(t, err, "id %q", id)
				require.Equal(t, id, info.ID)
				require.NoError(t, cl.Update(ctx, id, spec("y")), "id %q", id)
				// Seen through the other API too.
				info, err = c.Get(ctx, id)
				require.NoError(t, err, "id %q", id)
				require.Equal(t, `"y"`, string(info.Data))
				require.NoError(t, cl.Cancel(ctx, id), "id %q", id)
				info, err = c.Get(ctx, id)
				require.NoError(t, err, "id %q", id)
				require.Equal(t, skyring.StateNameCancelled, info.State, "id %q", id)
				require.ErrorIs(t, c.Cancel(ctx, id), skyring.ErrTimerNotFound, "id %q", id)
			}
		})
	}
}

// TestBodyTooLarge: a body over the 1 MiB limit.
func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	big := strings.Repeat("x", 1<<20+1)
	for _, nc := range b.clients(t) {
		_, err := nc.c.Create(ctx, spec(big))
		require.ErrorIs(t, err, skyring.ErrBodyTooLarge, nc.name)
	}
}

// TestReasonsAgree: both APIs give the same reason for the same rejection,
// non-ASCII text included.
func TestReasonsAgree(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	reasons := map[string]string{}
	for _, nc := range b.clients(t) {
		s := spec(nil)
		s.Callback.Transport = "pigeon-é"
		_, err := nc.c.Create(ctx, s)
		var ve *skyring.ValidationError
		require.ErrorAs(t, err, &ve, nc.name)
		reasons[nc.name] = ve.Reason

		_, err = nc.c.Create(ctx, client.TimerSpec{Timeout: time.Minute})
		require.True(t, errors.As(err, &ve), nc.name)
		reasons[nc.name] += " | " + ve.Reason
	}
	require.Equal(t, reasons["http"], reasons["nats"])
	require.Contains(t, reasons["http"], `"pigeon-é"`)
}
