package transports_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/transports"
)

func TestRetryAfterError(t *testing.T) {
	t.Parallel()
	base := errors.New("status 429")
	err := fmt.Errorf("delivering: %w", transports.WithRetryAfter(base, 3*time.Second))
	d, ok := transports.RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 3*time.Second, d)
	require.ErrorIs(t, err, base)
	require.Equal(t, "delivering: status 429", err.Error())
	require.NotErrorIs(t, err, transports.ErrPermanent)

	d, ok = transports.RetryAfter(transports.WithRetryAfter(base, -time.Second))
	require.True(t, ok)
	require.Zero(t, d, "a negative wait counts as none")

	_, ok = transports.RetryAfter(base)
	require.False(t, ok)
	require.NoError(t, transports.WithRetryAfter(nil, time.Second))
}

type codeErr int

func (e codeErr) Error() string   { return "code" }
func (e codeErr) StatusCode() int { return int(e) }

func TestStatus(t *testing.T) {
	t.Parallel()
	code, ok := transports.Status(fmt.Errorf("wrapped: %w", transports.Permanent(codeErr(418))))
	require.True(t, ok)
	require.Equal(t, 418, code)
	_, ok = transports.Status(errors.New("no status"))
	require.False(t, ok)
	_, ok = transports.Status(nil)
	require.False(t, ok)
}
