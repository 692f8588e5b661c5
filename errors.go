package skyring

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors. Callers branch on them with errors.Is; they survive a trip
// over NATS (relays, the public NATS API) because they travel as a status
// number and come back through ErrorFromStatus.
var (
	// ErrTimerNotFound: no pending timer has that id (never created, already
	// fired or cancelled). HTTP 404.
	ErrTimerNotFound = errors.New("skyring: timer not found")
	// ErrTimerExists: a create named an id that is already pending. HTTP 409.
	ErrTimerExists = errors.New("skyring: timer already exists")
	// ErrNoOwner: no ring member can take the timer right now. HTTP 503.
	ErrNoOwner = errors.New("skyring: no ring member can take the timer")
	// ErrOwnerTimeout: the node that owns the timer did not answer a relayed
	// command in time; the command may or may not have been carried out.
	// Retrying with the same id is safe (a create then answers 409 if the
	// first one was stored). HTTP 504.
	ErrOwnerTimeout = errors.New("skyring: the owner did not answer in time")
	// ErrClosed: the node (or component) is shutting down or closed. HTTP 503.
	ErrClosed = errors.New("skyring: closed")
	// ErrBodyTooLarge: the request body exceeds the limit. HTTP 413.
	ErrBodyTooLarge = errors.New("skyring: request body too large")
	// ErrUnknownTransport: the callback names a transport that is not
	// enabled. It is always wrapped in a *ValidationError (HTTP 400).
	ErrUnknownTransport = errors.New("skyring: unknown transport")
	// ErrInvalid is matched by every *ValidationError (HTTP 400).
	ErrInvalid = errors.New("skyring: invalid request")
)

// ValidationError is a rejected request: which field, and a one-line reason
// that is sent to the client verbatim (x-skyring-reason on HTTP, "error" on
// NATS).
type ValidationError struct {
	Field  string // e.g. "timeout", "callback.uri"; empty for the whole body
	Reason string // human, one line
	Err    error  // optional wrapped sentinel, e.g. ErrUnknownTransport
}

func (e *ValidationError) Error() string { return e.Reason }

// Unwrap returns the wrapped sentinel, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is makes every ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// StatusError is an error answer that came back from another node or from a
// Skyring server with a status that has no sentinel of its own.
type StatusError struct {
	Status int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("skyring: status %d: %s", e.Status, e.Reason)
}

// Status maps an error to the status code and the one-line reason the public
// APIs answer with. nil maps to 200 and an empty reason. Errors that are not
// Skyring's own map to 500; the node takes care that none reaches a client
// except a genuine internal failure (a storage write that failed, say).
func Status(err error) (status int, reason string) {
	if err == nil {
		return http.StatusOK, ""
	}
	var ve *ValidationError
	var se *StatusError
	switch {
	case errors.As(err, &ve):
		return http.StatusBadRequest, oneLine(ve.Reason)
	case errors.As(err, &se):
		return se.Status, oneLine(se.Reason)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnknownTransport):
		return http.StatusBadRequest, oneLine(err.Error())
	case errors.Is(err, ErrTimerNotFound):
		return http.StatusNotFound, "Timer not found"
	case errors.Is(err, ErrTimerExists):
		return http.StatusConflict, "A timer with that id already exists"
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, "Request body too large"
	case errors.Is(err, ErrNoOwner):
		return http.StatusServiceUnavailable, "No ring member can take the timer"
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, "Node is shutting down"
	case errors.Is(err, ErrOwnerTimeout):
		return http.StatusGatewayTimeout, "The owning node did not answer in time; the command may have been carried out: retry with the same id"
	default:
		return http.StatusInternalServerError, oneLine("Internal error: " + err.Error())
	}
}

// ErrorFromStatus turns a status and reason received from another node or a
// Skyring server back into the matching sentinel error, so that errors.Is
// works across the wire. A 2xx status returns nil.
func ErrorFromStatus(status int, reason string) error {
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusBadRequest:
		ve := &ValidationError{Reason: reason}
		if strings.HasPrefix(reason, unknownTransportPrefix) {
			ve.Field, ve.Err = "callback.transport", ErrUnknownTransport
		}
		return ve
	case status == http.StatusNotFound:
		return ErrTimerNotFound
	case status == http.StatusConflict:
		return ErrTimerExists
	case status == http.StatusRequestEntityTooLarge:
		return ErrBodyTooLarge
	case status == http.StatusServiceUnavailable && reason == "Node is shutting down":
		return ErrClosed
	case status == http.StatusServiceUnavailable:
		return ErrNoOwner
	case status == http.StatusGatewayTimeout:
		return ErrOwnerTimeout
	default:
		return &StatusError{Status: status, Reason: reason}
	}
}

const unknownTransportPrefix = "Unknown transport "

// UnknownTransportError builds the 400 for a callback.transport that is not
// enabled; known lists the enabled names for the message.
func UnknownTransportError(name string, known []string) error {
	return &ValidationError{
		Field:  "callback.transport",
		Reason: fmt.Sprintf("%s%q; known: %s", unknownTransportPrefix, name, strings.Join(known, ", ")),
		Err:    ErrUnknownTransport,
	}
}

func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}
