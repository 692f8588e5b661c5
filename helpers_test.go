package skyring_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

// requireInvalid checks the contract of every rejection: a *ValidationError
// that matches ErrInvalid, names the expected field, carries a non-empty
// one-line reason containing reasonPart, and maps to 400.
func requireInvalid(t testing.TB, err error, field, reasonPart string, msgAndArgs ...any) *skyring.ValidationError {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	var ve *skyring.ValidationError
	require.ErrorAs(t, err, &ve, msgAndArgs...)
	require.ErrorIs(t, err, skyring.ErrInvalid, msgAndArgs...)
	require.Equal(t, field, ve.Field, msgAndArgs...)
	require.NotEmpty(t, ve.Reason, msgAndArgs...)
	require.NotContains(t, ve.Reason, "\n", msgAndArgs...)
	require.NotContains(t, ve.Reason, "\r", msgAndArgs...)
	require.Equal(t, ve.Reason, err.Error(), msgAndArgs...)
	if reasonPart != "" {
		require.Contains(t, ve.Reason, reasonPart, msgAndArgs...)
	}
	status, reason := skyring.Status(err)
	require.Equal(t, http.StatusBadRequest, status, msgAndArgs...)
	require.Equal(t, ve.Reason, reason, msgAndArgs...)
	return ve
}

// checkValidationError is the non-fatal form of the rejection contract, for
// fuzz targets: it returns a description of the first broken rule, or "".
func checkValidationError(err error) string {
	var ve *skyring.ValidationError
	switch {
	case !errors.As(err, &ve):
		return "not a *ValidationError"
	case !errors.Is(err, skyring.ErrInvalid):
		return "does not match ErrInvalid"
	case ve.Reason == "":
		return "empty reason"
	case strings.ContainsAny(ve.Reason, "\r\n"):
		return "reason spans lines"
	}
	if status, _ := skyring.Status(err); status != http.StatusBadRequest {
		return "status is not 400"
	}
	return ""
}
