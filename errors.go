package skyring

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Sentinel errors. Callers branch on them with errors.Is; they survive a trip
// over NATS. Between nodes (relays) they travel as a Code next to the status
// and reason and come back through ErrorFromCode; over the public APIs, whose
// wire has only a status and a reason, they come back through
// ErrorFromStatus.
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
	// ErrStaleRing: a hand-off came from a node whose view of the ring
	// differs from the receiver's; nothing was stored, and the sender tries
	// again once the views agree. HTTP 409 (between nodes only).
	ErrStaleRing = errors.New("skyring: the sender's view of the ring differs from the receiver's")
	// ErrNotFailed: a retry named a timer that exists but has not failed
	// (it is pending, retrying, delivered or cancelled). HTTP 409.
	ErrNotFailed = errors.New("skyring: timer has not failed")
	// ErrTooManyTimers: the node that owns the timer already holds its
	// maximum of pending timers (--timer:max-pending); nothing was stored.
	// HTTP 503. The reason names the maximum.
	ErrTooManyTimers = errors.New("skyring: node holds its maximum of pending timers")
)

// TooManyTimersError builds the 503 of a node that holds its maximum of max
// pending timers; it matches ErrTooManyTimers.
func TooManyTimersError(max int) error {
	return &reasonError{err: ErrTooManyTimers, reason: fmt.Sprintf("%s%d pending timers", tooManyTimersPrefix, max)}
}

const tooManyTimersPrefix = "Node holds its maximum of "

// reasonError is a sentinel with a reason of its own (codes whose table
// reason is "").
type reasonError struct {
	err    error
	reason string
}

func (e *reasonError) Error() string { return e.reason }
func (e *reasonError) Unwrap() error { return e.err }

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

// Code names the kind of a Skyring error, one per sentinel, so that an error
// can cross a wire and come back as the same sentinel without anyone reading
// its reason text: ErrNoOwner and ErrClosed share 503, and an unknown
// transport is a 400 like any invalid request, so status alone cannot tell
// them apart and reasons are prose, free to change. Relay replies carry it
// (bus.Reply.Code), like jetstream's APIError carries an ErrorCode.
//
// The numbers are part of the relay wire format: never renumber a code,
// only add new ones at the end. A receiver that does not know a code falls
// back to what the status alone says.
type Code uint8

// The codes. The comment gives the String form, the sentinel and the status.
const (
	CodeNone             Code = iota // "": no error (2xx), or a sender that gave no code
	CodeInternal                     // "internal": no sentinel of its own (500, or a *StatusError's status)
	CodeInvalid                      // "invalid": ErrInvalid, any *ValidationError (400)
	CodeUnknownTransport             // "unknown_transport": ErrUnknownTransport in a *ValidationError (400)
	CodeNotFound                     // "not_found": ErrTimerNotFound (404)
	CodeExists                       // "exists": ErrTimerExists (409)
	CodeTooLarge                     // "too_large": ErrBodyTooLarge (413)
	CodeNoOwner                      // "no_owner": ErrNoOwner (503)
	CodeClosed                       // "closed": ErrClosed (503)
	CodeOwnerTimeout                 // "owner_timeout": ErrOwnerTimeout (504)
	CodeNotFailed                    // "not_failed": ErrNotFailed (409)
	CodeStaleRing                    // "stale_ring": ErrStaleRing (409)
	CodeTooManyTimers                // "too_many_timers": ErrTooManyTimers (503)
)

// codes is the one table from a code to its name, sentinel, status and
// fixed reason: Status, CodeOf, ErrorFromCode and ErrorFromStatus all read
// it.
var codes = [...]struct {
	name   string
	err    error  // the sentinel; nil for CodeNone and CodeInternal
	status int    // the status it answers with
	reason string // fixed one-line reason; "" when the error carries its own
	// byStatus: the status alone means this code when no code came with it
	// (a sender that gave none, a code this build does not know). 400 means
	// CodeInvalid (an unknown transport is one), 503 CodeNoOwner.
	byStatus bool
}{
	CodeNone:             {"", nil, http.StatusOK, "", false},
	CodeInternal:         {"internal", nil, http.StatusInternalServerError, "", false},
	CodeInvalid:          {"invalid", ErrInvalid, http.StatusBadRequest, "", true},
	CodeUnknownTransport: {"unknown_transport", ErrUnknownTransport, http.StatusBadRequest, "", false},
	CodeNotFound:         {"not_found", ErrTimerNotFound, http.StatusNotFound, "Timer not found", true},
	CodeExists:           {"exists", ErrTimerExists, http.StatusConflict, "A timer with that id already exists", true},
	CodeTooLarge:         {"too_large", ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "Request body too large", true},
	CodeNoOwner:          {"no_owner", ErrNoOwner, http.StatusServiceUnavailable, "No ring member can take the timer", true},
	CodeClosed:           {"closed", ErrClosed, http.StatusServiceUnavailable, "Node is shutting down", false},
	CodeOwnerTimeout: {"owner_timeout", ErrOwnerTimeout, http.StatusGatewayTimeout,
		"The owning node did not answer in time; the command may have been carried out: retry with the same id", true},
	CodeNotFailed: {"not_failed", ErrNotFailed, http.StatusConflict, "Only a failed timer can be retried", false},
	CodeStaleRing: {"stale_ring", ErrStaleRing, http.StatusConflict, "The sender's view of the ring differs from the receiver's; retry once they agree", false},
	// The reason names the maximum: it is the error's own (TooManyTimersError).
	CodeTooManyTimers: {"too_many_timers", ErrTooManyTimers, http.StatusServiceUnavailable, "", false},
}

// String returns the code's stable name, e.g. "not_found"; "" for
// CodeNone.
func (c Code) String() string {
	if int(c) < len(codes) {
		return codes[c].name
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// CodeOf returns the code of err: CodeNone for nil, the sentinel's code for
// an error that wraps one, CodeInternal for anything else. It classifies
// exactly as Status does.
func CodeOf(err error) Code {
	c, _, _ := classify(err)
	return c
}

// Status maps an error to the status code and the one-line reason the public
// APIs answer with. nil maps to 200 and an empty reason. Errors that are not
// Skyring's own map to 500; the node takes care that none reaches a client
// except a genuine internal failure (a storage write that failed, say).
func Status(err error) (status int, reason string) {
	_, status, reason = classify(err)
	return status, reason
}

func classify(err error) (Code, int, string) {
	if err == nil {
		return CodeNone, http.StatusOK, ""
	}
	var ve *ValidationError
	var se *StatusError
	switch {
	case errors.As(err, &ve):
		c := CodeInvalid
		if errors.Is(ve, ErrUnknownTransport) {
			c = CodeUnknownTransport
		}
		return c, http.StatusBadRequest, oneLine(ve.Reason)
	case errors.As(err, &se):
		return CodeInternal, se.Status, oneLine(se.Reason)
	case errors.Is(err, ErrUnknownTransport):
		return CodeUnknownTransport, http.StatusBadRequest, oneLine(err.Error())
	case errors.Is(err, ErrInvalid):
		return CodeInvalid, http.StatusBadRequest, oneLine(err.Error())
	}
	for c := CodeNotFound; int(c) < len(codes); c++ {
		if errors.Is(err, codes[c].err) {
			reason := codes[c].reason
			var re *reasonError
			switch {
			case errors.As(err, &re):
				// Its own reason wins over the table's.
				reason = oneLine(re.reason)
			case reason == "":
				reason = oneLine(err.Error())
			}
			return c, codes[c].status, reason
		}
	}
	return CodeInternal, http.StatusInternalServerError, oneLine("Internal error: " + err.Error())
}

// ErrorFromCode turns a code, status and reason received from another node
// back into the error they stand for, so that errors.Is works across the
// wire: a sentinel for its code, a *ValidationError with the reason for the
// 400s, a *StatusError for CodeInternal. A 2xx status returns nil. The
// reason is never read to choose the error. CodeNone or a code this build
// does not know falls back to what the status alone says (400 invalid, 404,
// 409, 413, 503 no owner, 504; any other a *StatusError).
func ErrorFromCode(code Code, status int, reason string) error {
	if status >= 200 && status < 300 {
		return nil
	}
	if code == CodeNone || int(code) >= len(codes) {
		code = codeOfStatus(status)
	}
	switch code {
	case CodeInvalid:
		return &ValidationError{Reason: reason}
	case CodeUnknownTransport:
		return &ValidationError{Field: "callback.transport", Reason: reason, Err: ErrUnknownTransport}
	case CodeNone, CodeInternal:
		return &StatusError{Status: status, Reason: reason}
	default:
		if codes[code].reason == "" && reason != "" {
			return &reasonError{err: codes[code].err, reason: reason}
		}
		return codes[code].err
	}
}

// codeOfStatus is the code a status stands for on its own, CodeNone if
// none.
func codeOfStatus(status int) Code {
	for c := range codes {
		if codes[c].byStatus && codes[c].status == status {
			return Code(c)
		}
	}
	return CodeNone
}

// ErrorFromStatus turns a status and reason answered by the public HTTP or
// NATS API back into the matching sentinel error (what the client does), so
// that errors.Is works across the wire. A 2xx status returns nil.
//
// The public APIs carry no code (API.md fixes their wire: a status and
// x-skyring-reason, or "status" and "error"), so this is the one place that
// reads a reason: it compares it with the fixed reasons of the table above,
// which is how a 503 tells ErrClosed from ErrNoOwner, and looks for the
// prefixes of UnknownTransportError and TooManyTimersError. Between nodes use ErrorFromCode.
func ErrorFromStatus(status int, reason string) error {
	code := CodeNone
	for c := range codes {
		if codes[c].status == status && codes[c].reason != "" && codes[c].reason == reason {
			code = Code(c)
			break
		}
	}
	if status == http.StatusBadRequest && strings.HasPrefix(reason, unknownTransportPrefix) {
		code = CodeUnknownTransport
	}
	if status == http.StatusServiceUnavailable && strings.HasPrefix(reason, tooManyTimersPrefix) {
		code = CodeTooManyTimers
	}
	return ErrorFromCode(code, status, reason)
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
