package skyring_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	ve := &skyring.ValidationError{Field: "timeout", Reason: "timeout is required"}
	cases := []struct {
		name   string
		err    error
		status int
		reason string // "" to skip the check
	}{
		{"nil", nil, http.StatusOK, ""},
		{"not found", skyring.ErrTimerNotFound, http.StatusNotFound, "Timer not found"},
		{"exists", skyring.ErrTimerExists, http.StatusConflict, "A timer with that id already exists"},
		{"too large", skyring.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "Request body too large"},
		{"no owner", skyring.ErrNoOwner, http.StatusServiceUnavailable, "No ring member can take the timer"},
		{"closed", skyring.ErrClosed, http.StatusServiceUnavailable, "Node is shutting down"},
		{"owner timeout", skyring.ErrOwnerTimeout, http.StatusGatewayTimeout, "The owning node did not answer in time; the command may have been carried out: retry with the same id"},
		{"validation", ve, http.StatusBadRequest, "timeout is required"},
		{"validation wrapped", fmt.Errorf("creating: %w", ve), http.StatusBadRequest, "timeout is required"},
		{"validation wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", ve)), http.StatusBadRequest, "timeout is required"},
		{"validation joined", errors.Join(io.EOF, ve), http.StatusBadRequest, "timeout is required"},
		{"unknown transport", skyring.UnknownTransportError("smtp", []string{"http", "nats"}), http.StatusBadRequest, `Unknown transport "smtp"; known: http, nats`},
		{"not found wrapped", fmt.Errorf("relay to n2: %w", skyring.ErrTimerNotFound), http.StatusNotFound, "Timer not found"},
		{"exists wrapped", fmt.Errorf("x: %w", skyring.ErrTimerExists), http.StatusConflict, ""},
		{"too large wrapped", fmt.Errorf("x: %w", skyring.ErrBodyTooLarge), http.StatusRequestEntityTooLarge, ""},
		{"no owner wrapped", fmt.Errorf("x: %w", skyring.ErrNoOwner), http.StatusServiceUnavailable, "No ring member can take the timer"},
		{"closed wrapped", fmt.Errorf("x: %w", skyring.ErrClosed), http.StatusServiceUnavailable, "Node is shutting down"},
		{"status error", &skyring.StatusError{Status: 418, Reason: "teapot"}, 418, "teapot"},
		{"status error wrapped", fmt.Errorf("x: %w", &skyring.StatusError{Status: 502, Reason: "bad gateway"}), 502, "bad gateway"},
		{"other", io.ErrUnexpectedEOF, http.StatusInternalServerError, "Internal error: unexpected EOF"},
		{"corrupt", fmt.Errorf("reading: %w", skyring.ErrCorrupt), http.StatusInternalServerError, ""},
	}
	for _, tc := range cases {
		status, reason := skyring.Status(tc.err)
		require.Equal(t, tc.status, status, tc.name)
		if tc.reason != "" || tc.err == nil {
			require.Equal(t, tc.reason, reason, tc.name)
		}
		if tc.err != nil {
			require.NotEmpty(t, reason, tc.name)
		}
		require.NotContains(t, reason, "\n", tc.name)
		require.NotContains(t, reason, "\r", tc.name)
	}
}

func TestStatusReasonsAreOneLine(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		&skyring.ValidationError{Field: "x", Reason: "line one\nline two\r\nthree\r"},
		&skyring.StatusError{Status: 502, Reason: "a\nb"},
		errors.New("storage:\nwrite failed\r\n"),
		fmt.Errorf("wrap\n%w", skyring.ErrTimerNotFound),
		skyring.UnknownTransportError("bad\nname\r", []string{"http"}),
	} {
		status, reason := skyring.Status(err)
		require.NotZero(t, status)
		require.NotEmpty(t, reason)
		require.False(t, strings.ContainsAny(reason, "\r\n"), "%q", reason)
	}
}

func TestErrorFromStatus(t *testing.T) {
	t.Parallel()
	for _, s := range []int{200, 201, 202, 204, 299} {
		require.NoError(t, skyring.ErrorFromStatus(s, "ignored"), "status %d", s)
	}
	require.ErrorIs(t, skyring.ErrorFromStatus(404, ""), skyring.ErrTimerNotFound)
	require.ErrorIs(t, skyring.ErrorFromStatus(409, "whatever"), skyring.ErrTimerExists)
	require.ErrorIs(t, skyring.ErrorFromStatus(413, ""), skyring.ErrBodyTooLarge)
	require.ErrorIs(t, skyring.ErrorFromStatus(503, "Node is shutting down"), skyring.ErrClosed)
	require.ErrorIs(t, skyring.ErrorFromStatus(503, "anything else"), skyring.ErrNoOwner)
	require.NotErrorIs(t, skyring.ErrorFromStatus(503, "anything else"), skyring.ErrClosed)
	require.ErrorIs(t, skyring.ErrorFromStatus(504, "anything"), skyring.ErrOwnerTimeout)

	err := skyring.ErrorFromStatus(400, "timeout is required")
	ve := requireInvalid(t, err, "", "timeout is required")
	require.Equal(t, "timeout is required", ve.Reason)
	require.NotErrorIs(t, err, skyring.ErrUnknownTransport)

	for _, s := range []int{100, 301, 401, 403, 418, 500, 502, 599} {
		err := skyring.ErrorFromStatus(s, "why")
		var se *skyring.StatusError
		require.ErrorAs(t, err, &se, "status %d", s)
		require.Equal(t, skyring.StatusError{Status: s, Reason: "why"}, *se)
		require.Contains(t, err.Error(), "why")
		status, reason := skyring.Status(err)
		require.Equal(t, s, status)
		require.Equal(t, "why", reason)
		for _, sentinel := range []error{skyring.ErrTimerNotFound, skyring.ErrTimerExists, skyring.ErrNoOwner, skyring.ErrClosed, skyring.ErrBodyTooLarge, skyring.ErrInvalid} {
			require.NotErrorIs(t, err, sentinel, "status %d", s)
		}
	}
}

// TestStatusRoundTrip: an error sent as Status and received through
// ErrorFromStatus (a public API answer read by the client, with no code)
// still matches its sentinel, and maps to the same status and reason again.
func TestStatusRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err      error
		sentinel error
	}{
		{skyring.ErrTimerNotFound, skyring.ErrTimerNotFound},
		{skyring.ErrTimerExists, skyring.ErrTimerExists},
		{skyring.ErrNoOwner, skyring.ErrNoOwner},
		{skyring.ErrClosed, skyring.ErrClosed},
		{skyring.ErrOwnerTimeout, skyring.ErrOwnerTimeout},
		{skyring.ErrBodyTooLarge, skyring.ErrBodyTooLarge},
		{fmt.Errorf("relay: %w", skyring.ErrTimerNotFound), skyring.ErrTimerNotFound},
		{fmt.Errorf("relay: %w", skyring.ErrClosed), skyring.ErrClosed},
		{&skyring.ValidationError{Field: "timeout", Reason: "timeout is required"}, skyring.ErrInvalid},
		{fmt.Errorf("x: %w", &skyring.ValidationError{Reason: "bad"}), skyring.ErrInvalid},
		{skyring.UnknownTransportError("smtp", []string{"http"}), skyring.ErrUnknownTransport},
		{skyring.UnknownTransportError("smtp", nil), skyring.ErrUnknownTransport},
	}
	for _, tc := range cases {
		status, reason := skyring.Status(tc.err)
		back := skyring.ErrorFromStatus(status, reason)
		require.ErrorIs(t, back, tc.sentinel, "%v", tc.err)
		s2, r2 := skyring.Status(back)
		require.Equal(t, status, s2, "%v", tc.err)
		require.Equal(t, reason, r2, "%v", tc.err)
	}

	// An unknown transport keeps its field and still matches ErrInvalid.
	status, reason := skyring.Status(skyring.UnknownTransportError("smtp", []string{"http", "nats"}))
	back := skyring.ErrorFromStatus(status, reason)
	require.ErrorIs(t, back, skyring.ErrInvalid)
	requireInvalid(t, back, "callback.transport", `Unknown transport "smtp"`)
}

func TestUnknownTransportError(t *testing.T) {
	t.Parallel()
	err := skyring.UnknownTransportError("smtp", []string{"http", "nats"})
	require.ErrorIs(t, err, skyring.ErrUnknownTransport)
	ve := requireInvalid(t, err, "callback.transport", "")
	require.Equal(t, `Unknown transport "smtp"; known: http, nats`, ve.Reason)
	require.Equal(t, skyring.ErrUnknownTransport, errors.Unwrap(err))
}

func TestValidationError(t *testing.T) {
	t.Parallel()
	ve := &skyring.ValidationError{Field: "f", Reason: "r"}
	require.Equal(t, "r", ve.Error())
	require.ErrorIs(t, ve, skyring.ErrInvalid)
	require.Nil(t, ve.Unwrap())
	for _, other := range []error{skyring.ErrTimerNotFound, skyring.ErrClosed, skyring.ErrUnknownTransport, io.EOF} {
		require.NotErrorIs(t, ve, other)
	}
	for _, sentinel := range []error{skyring.ErrTimerNotFound, skyring.ErrTimerExists, skyring.ErrNoOwner, skyring.ErrClosed, skyring.ErrBodyTooLarge} {
		require.NotErrorIs(t, sentinel, skyring.ErrInvalid)
	}
}

// TestStatusBareSentinels: ErrInvalid and ErrUnknownTransport are 400s even
// bare or wrapped with %w (not only inside a *ValidationError), and survive
// the trip through ErrorFromStatus.
func TestStatusBareSentinels(t *testing.T) {
	t.Parallel()
	for _, sentinel := range []error{skyring.ErrInvalid, skyring.ErrUnknownTransport} {
		for _, err := range []error{sentinel, fmt.Errorf("checking: %w", sentinel)} {
			status, reason := skyring.Status(err)
			require.Equal(t, http.StatusBadRequest, status, reason)
			require.ErrorIs(t, skyring.ErrorFromStatus(status, reason), skyring.ErrInvalid)
		}
	}
}

// sentinelCases are one error per code, bare and wrapped, with the sentinel
// errors.Is must find after a trip through a code.
func sentinelCases() []struct {
	err      error
	sentinel error
	code     skyring.Code
} {
	return []struct {
		err      error
		sentinel error
		code     skyring.Code
	}{
		{skyring.ErrTimerNotFound, skyring.ErrTimerNotFound, skyring.CodeNotFound},
		{fmt.Errorf("relay: %w", skyring.ErrTimerNotFound), skyring.ErrTimerNotFound, skyring.CodeNotFound},
		{skyring.ErrTimerExists, skyring.ErrTimerExists, skyring.CodeExists},
		{skyring.ErrBodyTooLarge, skyring.ErrBodyTooLarge, skyring.CodeTooLarge},
		{skyring.ErrNoOwner, skyring.ErrNoOwner, skyring.CodeNoOwner},
		{skyring.ErrClosed, skyring.ErrClosed, skyring.CodeClosed},
		{fmt.Errorf("relay: %w (%w)", skyring.ErrClosed, io.EOF), skyring.ErrClosed, skyring.CodeClosed},
		{skyring.ErrOwnerTimeout, skyring.ErrOwnerTimeout, skyring.CodeOwnerTimeout},
		{skyring.ErrInvalid, skyring.ErrInvalid, skyring.CodeInvalid},
		{&skyring.ValidationError{Field: "timeout", Reason: "timeout is required"}, skyring.ErrInvalid, skyring.CodeInvalid},
		{skyring.ErrUnknownTransport, skyring.ErrUnknownTransport, skyring.CodeUnknownTransport},
		{skyring.UnknownTransportError("smtp", []string{"http"}), skyring.ErrUnknownTransport, skyring.CodeUnknownTransport},
	}
}

// TestCodeRoundTrip: every sentinel, sent as CodeOf plus Status and
// received through ErrorFromCode (what a relay does), is the same sentinel
// again, with the same code, status and reason.
func TestCodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range sentinelCases() {
		code := skyring.CodeOf(tc.err)
		require.Equal(t, tc.code, code, "%v", tc.err)
		status, reason := skyring.Status(tc.err)
		back := skyring.ErrorFromCode(code, status, reason)
		require.ErrorIs(t, back, tc.sentinel, "%v", tc.err)
		require.Equal(t, code, skyring.CodeOf(back), "%v", tc.err)
		s2, r2 := skyring.Status(back)
		require.Equal(t, status, s2, "%v", tc.err)
		require.Equal(t, reason, r2, "%v", tc.err)
	}

	// An unknown transport keeps its field; any validation error its reason.
	err := skyring.UnknownTransportError("smtp", []string{"http", "nats"})
	status, reason := skyring.Status(err)
	back := skyring.ErrorFromCode(skyring.CodeOf(err), status, reason)
	requireInvalid(t, back, "callback.transport", `Unknown transport "smtp"`)

	// Errors with no sentinel come back as a *StatusError with their status.
	for _, err := range []error{io.ErrUnexpectedEOF, &skyring.StatusError{Status: 404, Reason: "Not Found"}, &skyring.StatusError{Status: 502, Reason: "x"}} {
		code := skyring.CodeOf(err)
		require.Equal(t, skyring.CodeInternal, code, "%v", err)
		status, reason := skyring.Status(err)
		back := skyring.ErrorFromCode(code, status, reason)
		var se *skyring.StatusError
		require.ErrorAs(t, back, &se, "%v", err)
		require.Equal(t, skyring.StatusError{Status: status, Reason: reason}, *se)
		require.NotErrorIs(t, back, skyring.ErrTimerNotFound, "a 404 without the not_found code is no ErrTimerNotFound")
	}

	require.Equal(t, skyring.CodeNone, skyring.CodeOf(nil))
	require.NoError(t, skyring.ErrorFromCode(skyring.CodeNone, 200, ""))
	require.NoError(t, skyring.ErrorFromCode(skyring.CodeNotFound, 201, "a 2xx is never an error"))
}

// TestErrorFromCodeIgnoresReason: the code alone decides. A reason that
// reads like another error's (or exactly like it) changes nothing.
func TestErrorFromCodeIgnoresReason(t *testing.T) {
	t.Parallel()
	_, closedReason := skyring.Status(skyring.ErrClosed)
	require.Equal(t, "Node is shutting down", closedReason)

	for _, code := range []skyring.Code{skyring.CodeNoOwner, skyring.CodeInternal, skyring.CodeNone} {
		err := skyring.ErrorFromCode(code, http.StatusServiceUnavailable, closedReason)
		require.NotErrorIs(t, err, skyring.ErrClosed, "code %q", code)
	}
	require.ErrorIs(t, skyring.ErrorFromCode(skyring.CodeNoOwner, 503, closedReason), skyring.ErrNoOwner)
	require.ErrorIs(t, skyring.ErrorFromCode(skyring.CodeNone, 503, closedReason), skyring.ErrNoOwner, "503 alone means no owner")
	require.ErrorIs(t, skyring.ErrorFromCode(skyring.CodeClosed, 503, "anything"), skyring.ErrClosed)

	// A 400 whose reason looks like an unknown transport is one only with
	// the code.
	lookalike := `Unknown transport "smtp"; known: http`
	require.NotErrorIs(t, skyring.ErrorFromCode(skyring.CodeInvalid, 400, lookalike), skyring.ErrUnknownTransport)
	require.NotErrorIs(t, skyring.ErrorFromCode(skyring.CodeNone, 400, lookalike), skyring.ErrUnknownTransport)
	require.ErrorIs(t, skyring.ErrorFromCode(skyring.CodeUnknownTransport, 400, "whatever"), skyring.ErrUnknownTransport)
}

// TestErrorFromCodeFallback: no code, or a code from a newer build, means
// what the status alone says.
func TestErrorFromCodeFallback(t *testing.T) {
	t.Parallel()
	for _, code := range []skyring.Code{skyring.CodeNone, 200, 255} {
		require.ErrorIs(t, skyring.ErrorFromCode(code, 400, "bad"), skyring.ErrInvalid)
		require.ErrorIs(t, skyring.ErrorFromCode(code, 404, ""), skyring.ErrTimerNotFound)
		require.ErrorIs(t, skyring.ErrorFromCode(code, 409, ""), skyring.ErrTimerExists)
		require.ErrorIs(t, skyring.ErrorFromCode(code, 413, ""), skyring.ErrBodyTooLarge)
		require.ErrorIs(t, skyring.ErrorFromCode(code, 503, ""), skyring.ErrNoOwner)
		require.ErrorIs(t, skyring.ErrorFromCode(code, 504, ""), skyring.ErrOwnerTimeout)
		var se *skyring.StatusError
		require.ErrorAs(t, skyring.ErrorFromCode(code, 500, "boom"), &se)
		require.Equal(t, skyring.StatusError{Status: 500, Reason: "boom"}, *se)
	}
}

func TestCodeString(t *testing.T) {
	t.Parallel()
	want := map[skyring.Code]string{
		skyring.CodeNone: "", skyring.CodeInternal: "internal", skyring.CodeInvalid: "invalid",
		skyring.CodeUnknownTransport: "unknown_transport", skyring.CodeNotFound: "not_found",
		skyring.CodeExists: "exists", skyring.CodeTooLarge: "too_large", skyring.CodeNoOwner: "no_owner",
		skyring.CodeClosed: "closed", skyring.CodeOwnerTimeout: "owner_timeout", 200: "code(200)",
	}
	for c, name := range want {
		require.Equal(t, name, c.String())
	}
	// The numbers are on the relay wire: they must never change.
	require.EqualValues(t, 0, skyring.CodeNone)
	require.EqualValues(t, 1, skyring.CodeInternal)
	require.EqualValues(t, 2, skyring.CodeInvalid)
	require.EqualValues(t, 3, skyring.CodeUnknownTransport)
	require.EqualValues(t, 4, skyring.CodeNotFound)
	require.EqualValues(t, 5, skyring.CodeExists)
	require.EqualValues(t, 6, skyring.CodeTooLarge)
	require.EqualValues(t, 7, skyring.CodeNoOwner)
	require.EqualValues(t, 8, skyring.CodeClosed)
	require.EqualValues(t, 9, skyring.CodeOwnerTimeout)
}

func TestTooManyTimersCrossesTheWire(t *testing.T) {
	err := skyring.TooManyTimersError(7)
	require.ErrorIs(t, err, skyring.ErrTooManyTimers)
	status, reason := skyring.Status(err)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "Node holds its maximum of 7 pending timers", reason)
	code := skyring.CodeOf(err)
	require.Equal(t, "too_many_timers", code.String())

	back := skyring.ErrorFromCode(code, status, reason)
	require.ErrorIs(t, back, skyring.ErrTooManyTimers)
	_, again := skyring.Status(back)
	require.Equal(t, reason, again, "a relayed 503 keeps the reason naming the maximum")

	require.ErrorIs(t, skyring.ErrorFromStatus(status, reason), skyring.ErrTooManyTimers)
	require.ErrorIs(t, skyring.ErrorFromStatus(status, "No ring member can take the timer"), skyring.ErrNoOwner)
}
