// Package natstransport is Skyring's "nats" transport: a fired timer is sent
// to the NATS subject in callback.uri.
//
//   - callback.method "publish" (case-insensitive) publishes the timer's data
//     to the subject, fire and forget: success means the NATS client accepted
//     the message, as with any core NATS publish.
//   - callback.method "request" sends the data as a request and waits for the
//     first reply until the delivery timeout; any reply is success, no
//     responder or no reply in time is a failure.
//   - Any other method is ErrBadMethod; a subject that is empty, holds
//     whitespace or wildcards is ErrBadSubject. Both are marked
//     transports.ErrPermanent (retrying cannot fix them).
//   - A subject the node itself uses is refused (ErrReservedSubject, also
//     permanent), so that a timer cannot drive the node or the server:
//     anything under "_SKYRING." (membership, relays), "_INBOX." (request
//     replies), "$SYS." and "$JS." (the server's system and JetStream
//     APIs) and, with Options.Prefix p, under "p.timer." (the public API),
//     "p.events." and "p.node." (events). Subjects compare by tokens and
//     case-sensitively, as NATS does: "skyring.timers.x" is not under
//     "skyring.timer.".
//   - With Options.Allow set, a subject must also match one of its patterns
//     (NATS wildcards "*" and ">"), else ErrSubjectNotAllowed (permanent).
//   - Validate (transports.Validator) applies the same method and subject
//     rules when a timer is created or updated, so such a callback is a 400
//     then rather than a failure when the timer fires; a timer stored
//     before a rule existed fails for good when it fires, unsent.
//
// The data sent is the timer's body (skyring.Timer.Body): a string verbatim,
// an object as JSON, nothing for no data. When the connection supports
// headers (FromConn's does), the message carries "Skyring-Timer-Id: <id>",
// "Skyring-Attempt: <n>" (the 1-based delivery attempt), "Skyring-Fence:
// <f>" (the fencing token, skyring.Timer.Fence) and, for object
// data, "Content-Type: application/json".
//
// The transport does not own the NATS connection: the node hands it one
// through transports.NATSConn, and closes it itself. This keeps nats.go out
// of package transports (FromConn adapts a *nats.Conn here) and lets tests
// or embedders substitute anything that can publish and request.
//
// Its Go API is meant for embedders and is kept stable.
package natstransport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
)

// Name is the name clients put in callback.transport.
const Name = "nats"

// DefaultTimeout is the default of Options.Timeout.
const DefaultTimeout = 10 * time.Second

// Callback methods.
const (
	MethodPublish = "publish"
	MethodRequest = "request"
)

// Header names set when the connection supports headers.
const (
	HeaderTimerID     = "Skyring-Timer-Id"
	HeaderAttempt     = "Skyring-Attempt" // 1-based delivery attempt
	HeaderFence       = "Skyring-Fence"   // the fencing token (skyring.Timer.Fence)
	HeaderContentType = "Content-Type"
)

var (
	// ErrBadMethod: callback.method is neither publish nor request. The error
	// is also marked transports.ErrPermanent.
	ErrBadMethod = errors.New("natstransport: unsupported method")
	// ErrBadSubject: callback.uri is not a subject one can publish to. The
	// error is also marked transports.ErrPermanent.
	ErrBadSubject = errors.New("natstransport: bad subject")
	// ErrReservedSubject: callback.uri is a subject Skyring or the NATS
	// server uses itself (see the package doc). The error is also marked
	// transports.ErrPermanent.
	ErrReservedSubject = errors.New("natstransport: reserved subject")
	// ErrSubjectNotAllowed: Options.Allow is set and callback.uri matches
	// none of its patterns. The error is also marked transports.ErrPermanent.
	ErrSubjectNotAllowed = errors.New("natstransport: subject not allowed")
	// ErrBadPattern: an Options.Allow pattern is not a valid subject
	// pattern (New fails with it).
	ErrBadPattern = errors.New("natstransport: bad subject pattern")
	// ErrNoConn: New or Factory was given no NATS connection.
	ErrNoConn = errors.New("natstransport: no NATS connection")
)

// HeaderConn is an optional extension of transports.NATSConn: a connection
// that can send headers with a message. The transport uses it when the
// connection given implements it.
type HeaderConn interface {
	PublishHeader(subj string, hdr map[string][]string, data []byte) error
	RequestHeader(ctx context.Context, subj string, hdr map[string][]string, data []byte) ([]byte, error)
}

// Options configure a Transport.
type Options struct {
	// Conn is the NATS connection to deliver on. Required. The transport
	// does not close it.
	Conn transports.NATSConn
	// Timeout bounds a request's wait for its reply (the Execute ctx's
	// deadline applies too, whichever is earlier). Default DefaultTimeout.
	Timeout time.Duration
	// Prefix is the node's subject prefix (node.Options.Prefix): subjects
	// under "<Prefix>.timer.", "<Prefix>.events." and "<Prefix>.node." are
	// refused. Empty refuses only the subjects of ReservedPatterns.
	Prefix string
	// Allow, when not empty, restricts callbacks to the subjects matching
	// one of these patterns (NATS wildcards: "*" one token, ">" the rest).
	// Reserved subjects stay refused even if a pattern matches them.
	Allow []string
}

// ReservedPatterns are the subjects the transport refuses whatever the
// prefix: Skyring's internal subjects, request-reply inboxes, and the NATS
// server's system and JetStream APIs.
var ReservedPatterns = []string{"_SKYRING.>", "_INBOX.>", "$SYS.>", "$JS.>"}

// prefixPatterns are the patterns refused under Options.Prefix.
var prefixPatterns = []string{"timer.>", "events.>", "node.>"}

// Transport is the "nats" transport. It is safe for concurrent use.
type Transport struct {
	conn    transports.NATSConn
	hconn   HeaderConn // conn as a HeaderConn, or nil
	timeout time.Duration
	refused [][]string // reserved patterns, by tokens
	allow   [][]string // Options.Allow, by tokens; nil allows all
	closed  atomic.Bool
}

var (
	_ transports.Transport  = (*Transport)(nil)
	_ transports.Shutdowner = (*Transport)(nil)
	_ transports.Validator  = (*Transport)(nil)
)

// New returns a Transport; opts.Conn nil is ErrNoConn.
func New(opts Options) (*Transport, error) {
	if opts.Conn == nil {
		return nil, ErrNoConn
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	t := &Transport{conn: opts.Conn, timeout: opts.Timeout}
	t.hconn, _ = opts.Conn.(HeaderConn)
	for _, p := range ReservedPatterns {
		t.refused = append(t.refused, strings.Split(p, "."))
	}
	if opts.Prefix != "" {
		for _, p := range prefixPatterns {
			t.refused = append(t.refused, strings.Split(opts.Prefix+"."+p, "."))
		}
	}
	for _, p := range opts.Allow {
		if why := patternProblem(p); why != "" {
			return nil, fmt.Errorf("%w %q: %s", ErrBadPattern, p, why)
		}
		t.allow = append(t.allow, strings.Split(p, "."))
	}
	return t, nil
}

// Factory builds the transport for a transports.Catalog from deps.NATS,
// deps.Timeout, deps.Prefix and deps.NATSAllow; without deps.NATS it fails
// with ErrNoConn.
func Factory(deps transports.Deps) (transports.Transport, error) {
	return New(Options{Conn: deps.NATS, Timeout: deps.Timeout, Prefix: deps.Prefix, Allow: deps.NATSAllow})
}

// Name returns "nats".
func (t *Transport) Name() string { return Name }

// Execute delivers tm (see the package doc).
func (t *Transport) Execute(ctx context.Context, tm *skyring.Timer) error {
	if t.closed.Load() {
		return fmt.Errorf("natstransport: timer %s: %w", tm.ID, skyring.ErrClosed)
	}
	request, err := isRequest(tm.Callback.Method)
	if err != nil {
		return err
	}
	subj := tm.Callback.URI
	if err := ValidateSubject(subj); err != nil {
		return err
	}
	if err := t.checkSubject(subj); err != nil {
		return transports.Permanent(fmt.Errorf("natstransport: timer %s: %w", tm.ID, err))
	}
	data, isJSON := tm.Body()

	var hdr map[string][]string
	if t.hconn != nil {
		hdr = map[string][]string{HeaderTimerID: {tm.ID}, HeaderAttempt: {strconv.Itoa(tm.Attempt())}, HeaderFence: {strconv.FormatUint(tm.Fence, 10)}}
		if isJSON {
			hdr[HeaderContentType] = []string{"application/json"}
		}
	}

	if !request {
		if hdr != nil {
			err = t.hconn.PublishHeader(subj, hdr, data)
		} else {
			err = t.conn.Publish(subj, data)
		}
		if err != nil {
			return fmt.Errorf("natstransport: timer %s: publish to %q: %w", tm.ID, subj, err)
		}
		return nil
	}

	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > t.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	if hdr != nil {
		_, err = t.hconn.RequestHeader(ctx, subj, hdr, data)
	} else {
		_, err = t.conn.Request(ctx, subj, data)
	}
	if err != nil {
		return fmt.Errorf("natstransport: timer %s: request to %q: %w", tm.ID, subj, err)
	}
	return nil
}

// Shutdown makes later Execute calls fail with skyring.ErrClosed. The
// connection belongs to the caller and stays open. It is idempotent.
func (t *Transport) Shutdown(context.Context) error {
	t.closed.Store(true)
	return nil
}

// isRequest reports whether method m (case-insensitive) is request rather
// than publish; any other method is an error wrapping ErrBadMethod (and
// transports.ErrPermanent).
func isRequest(m string) (bool, error) {
	switch {
	case strings.EqualFold(m, MethodPublish):
		return false, nil
	case strings.EqualFold(m, MethodRequest):
		return true, nil
	}
	return false, transports.Permanent(fmt.Errorf("%w %q (want publish or request)", ErrBadMethod, m))
}

// Validate implements transports.Validator: it accepts exactly the callbacks
// Execute can send, checking their form only (it sends nothing).
//
//   - callback.method: publish or request, in any case; else a
//     *skyring.ValidationError with Field "callback.method" wrapping
//     ErrBadMethod.
//   - callback.uri: a subject ValidateSubject accepts; else Field
//     "callback.uri", wrapping ErrBadSubject.
func (t *Transport) Validate(cb skyring.Callback) error {
	if _, err := isRequest(cb.Method); err != nil {
		return &skyring.ValidationError{
			Field:  "callback.method",
			Reason: fmt.Sprintf("callback.method %s is not supported by the nats transport; want publish or request", transports.Quote(cb.Method)),
			Err:    ErrBadMethod,
		}
	}
	if why := subjectProblem(cb.URI); why != "" {
		return &skyring.ValidationError{
			Field:  "callback.uri",
			Reason: fmt.Sprintf("callback.uri %s is not a NATS subject to publish to: %s", transports.Quote(cb.URI), why),
			Err:    ErrBadSubject,
		}
	}
	if err := t.checkSubject(cb.URI); err != nil {
		return &skyring.ValidationError{
			Field:  "callback.uri",
			Reason: fmt.Sprintf("callback.uri %s is refused by the nats transport: %s", transports.Quote(cb.URI), reasonOf(err)),
			Err:    err,
		}
	}
	return nil
}

// subjectError is checkSubject's error: a sentinel and the reason.
type subjectError struct {
	sentinel error
	why      string
}

func (e *subjectError) Error() string { return e.sentinel.Error() + ": " + e.why }
func (e *subjectError) Unwrap() error { return e.sentinel }

func reasonOf(err error) string {
	var se *subjectError
	if errors.As(err, &se) {
		return se.why
	}
	return err.Error()
}

// checkSubject refuses a well-formed subject that is reserved or, with an
// allow-list, not allowed.
func (t *Transport) checkSubject(subj string) error {
	toks := strings.Split(subj, ".")
	for _, p := range t.refused {
		if matchTokens(p, toks) {
			return &subjectError{ErrReservedSubject, "it is under " + strings.Join(p, ".") + ", which Skyring or the NATS server uses itself"}
		}
	}
	if t.allow == nil {
		return nil
	}
	for _, p := range t.allow {
		if matchTokens(p, toks) {
			return nil
		}
	}
	return &subjectError{ErrSubjectNotAllowed, "it matches no subject of --nats:callback-allow"}
}

// MatchSubject reports whether subject subj matches pattern, NATS style:
// tokens compare exactly (case-sensitive), "*" matches any one token, a
// final ">" one or more tokens.
func MatchSubject(pattern, subj string) bool {
	return matchTokens(strings.Split(pattern, "."), strings.Split(subj, "."))
}

func matchTokens(p, s []string) bool {
	for i, tok := range p {
		if tok == ">" && i == len(p)-1 {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

// patternProblem says what is wrong with pattern p as a subscription-style
// subject pattern, or "" if nothing is.
func patternProblem(p string) string {
	if p == "" {
		return "empty"
	}
	toks := strings.Split(p, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return "empty token"
		case strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
			return "whitespace or control character"
		case tok == ">" && i != len(toks)-1:
			return "\">\" must be the last token"
		}
	}
	return ""
}

// ValidateSubject checks that subj is a subject one can publish to: not
// empty, no whitespace or control characters, no empty token (so no leading,
// trailing or doubled "."), no wildcard token ("*" or ">"). The error wraps
// ErrBadSubject and transports.ErrPermanent.
func ValidateSubject(subj string) error {
	if why := subjectProblem(subj); why != "" {
		return transports.Permanent(fmt.Errorf("%w %q: %s", ErrBadSubject, subj, why))
	}
	return nil
}

// subjectProblem says what is wrong with subj as a subject to publish to,
// or "" if nothing is.
func subjectProblem(subj string) string {
	if subj == "" {
		return "empty"
	}
	start := 0
	for i := 0; i <= len(subj); i++ {
		if i < len(subj) {
			c := subj[i]
			if c <= ' ' || c == 0x7f {
				return "whitespace or control character"
			}
			if c != '.' {
				continue
			}
		}
		switch subj[start:i] {
		case "":
			return "empty token"
		case "*", ">":
			return "wildcard"
		}
		start = i + 1
	}
	return ""
}

// FromConn adapts a *nats.Conn to transports.NATSConn (and HeaderConn), for
// Deps.NATS or Options.Conn. The connection stays the caller's.
func FromConn(nc *nats.Conn) transports.NATSConn {
	return conn{nc}
}

type conn struct{ nc *nats.Conn }

var _ HeaderConn = conn{}

func (c conn) Publish(subj string, data []byte) error { return c.nc.Publish(subj, data) }

func (c conn) Request(ctx context.Context, subj string, data []byte) ([]byte, error) {
	m, err := c.nc.RequestWithContext(ctx, subj, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// PublishHeader and RequestHeader drop the headers when the server does not
// support them (nats-server before 2.2), rather than fail the delivery.

func (c conn) PublishHeader(subj string, hdr map[string][]string, data []byte) error {
	if !c.nc.HeadersSupported() {
		return c.Publish(subj, data)
	}
	return c.nc.PublishMsg(&nats.Msg{Subject: subj, Header: nats.Header(hdr), Data: data})
}

func (c conn) RequestHeader(ctx context.Context, subj string, hdr map[string][]string, data []byte) ([]byte, error) {
	if !c.nc.HeadersSupported() {
		return c.Request(ctx, subj, data)
	}
	m, err := c.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subj, Header: nats.Header(hdr), Data: data})
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
