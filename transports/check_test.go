package transports_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/transportstest"
)

// validating is a transport whose Validate returns err.
type validating struct {
	name string
	err  error
	got  *skyring.Callback
}

func (v validating) Name() string                                  { return v.name }
func (v validating) Execute(context.Context, *skyring.Timer) error { return nil }
func (v validating) Validate(cb skyring.Callback) error {
	*v.got = cb
	return v.err
}

func TestRegistryCheck(t *testing.T) {
	t.Parallel()
	fieldErr := &skyring.ValidationError{Field: "callback.uri", Reason: `callback.uri "x" is no queue`}
	plain := errors.New("no such\nqueue")
	var got skyring.Callback
	r, err := transports.NewRegistry(
		transportstest.NewRecorder("plain"), // no Validator: anything goes
		validating{name: "ok", got: &got},
		validating{name: "field", err: fieldErr, got: &got},
		validating{name: "wrapped", err: fmt.Errorf("queue: %w", fieldErr), got: &got},
		validating{name: "other", err: plain, got: &got},
	)
	require.NoError(t, err)

	for _, tc := range []struct {
		transport string
		field     string // "" when accepted
		reason    string
		is        error
	}{
		{transport: "plain"},
		{transport: "ok"},
		{transport: "smtp", field: "callback.transport", reason: `Unknown transport "smtp"; known: field, ok, other, plain, wrapped`, is: skyring.ErrUnknownTransport},
		{transport: "field", field: "callback.uri", reason: `callback.uri "x" is no queue`},
		{transport: "wrapped", field: "callback.uri", reason: `callback.uri "x" is no queue`},
		{transport: "other", field: "callback", reason: `Invalid callback for transport "other": no such queue`, is: plain},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			cb := skyring.Callback{Transport: tc.transport, Method: "any thing", URI: "not even a URL"}
			err := r.Check(cb)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var ve *skyring.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)
			status, reason := skyring.Status(err)
			require.Equal(t, 400, status)
			require.Equal(t, tc.reason, reason)
			require.ErrorIs(t, err, skyring.ErrInvalid)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			if tc.transport != "smtp" {
				require.Equal(t, cb, got, "Validate sees the whole callback")
			}
		})
	}
}
