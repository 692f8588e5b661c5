package skyring

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/skyring/skyring/internal/wire"
)

// Callback says how a fired timer is delivered: through which transport, with
// which method, to which address.
type Callback struct {
	Transport string `json:"transport"`
	Method    string `json:"method"`
	URI       string `json:"uri"`
	// Retry is the timer's own retry policy (callback.retry); its zero
	// fields take the node's defaults. It is shown only when set.
	Retry Retry `json:"retry,omitzero"`
}

// Timer is one pending timer as the node stores and arms it.
//
// Times are Unix nanoseconds so that "never early" is exact: the timer fires
// at the first instant the clock reads Due or later. The public APIs show
// them in Unix milliseconds.
type Timer struct {
	ID       string
	Created  int64 // Unix ns: when the node accepted the create or the last update
	Due      int64 // Unix ns: when it fires
	Data     json.RawMessage
	Callback Callback

	// Delivery state, stored with the record so that a retry survives a
	// restart and travels with a hand-off.
	Attempts int   // delivery attempts made so far (0 until the first one ends)
	Next     int64 // Unix ns: the earliest time of the next attempt; 0 before the first failure

	// Fate: where the timer's life stands. A pending timer (StatePending)
	// is armed; the others are kept only to answer for them: a failed one
	// until it is retried or dropped, a delivered or cancelled one for the
	// node's retention period (counted from Finished).
	State      State
	Finished   int64  // Unix ns: when it was delivered, finally failed or cancelled; 0 while pending
	LastError  string // the error of the last failed attempt; "" if none failed
	LastStatus int    // the receiver's status code in the last attempt (e.g. HTTP 503); 0 if none came

	// Moves counts the times the timer changed owner (hand-offs taken);
	// stored, it feeds the fence.
	Moves uint32
	// Fence is the fencing token of the delivery attempt under way, set by
	// the node just before it hands the timer to its transport and sent
	// with it (x-skyring-fence): it grows every time the timer changes
	// owner or its node restarts, so a receiver that remembers the highest
	// fence it saw per timer can drop a stale duplicate. Not stored.
	Fence uint64
	// Relative marks a timer given with a timeout rather than at
	// (ParseTimer sets it): the node that owns it counts the timeout
	// (Due - Created) again from when it stores the timer, by its own
	// clock, so that a relayed timer is never early by the clock of the
	// node that accepted it. It is a property of a create or update
	// request only: the relay encoding carries it, the storage encoding
	// (AppendBinary) does not, and a stored or handed-off timer is always
	// absolute.
	Relative bool
}

// State is where a timer's life stands, as stored. A pending timer with
// failed attempts behind it is shown as "retrying" (Timer.StateName).
type State uint8

// The states. The numbers are part of the storage and relay encodings:
// never renumber them.
const (
	StatePending   State = iota // armed: due, or between attempts
	StateDelivered              // an attempt succeeded
	StateFailed                 // out of attempts, or a final failure: a dead letter
	StateCancelled              // cancelled before it fired
	stateEnd
)

// State names as the public APIs show them.
const (
	StateNamePending   = "pending"
	StateNameRetrying  = "retrying"
	StateNameDelivered = "delivered"
	StateNameFailed    = "failed"
	StateNameCancelled = "cancelled"
)

// String returns the stored state's name ("pending" for a retrying timer
// too; see Timer.StateName).
func (s State) String() string {
	switch s {
	case StatePending:
		return StateNamePending
	case StateDelivered:
		return StateNameDelivered
	case StateFailed:
		return StateNameFailed
	case StateCancelled:
		return StateNameCancelled
	default:
		return "state(" + strconv.Itoa(int(s)) + ")"
	}
}

// Final reports whether s ends the timer's life: delivered, failed or
// cancelled.
func (s State) Final() bool { return s != StatePending }

// StateName is t's state as the public APIs show it: pending, retrying (a
// pending timer with a failed attempt behind it), delivered, failed or
// cancelled.
func (t *Timer) StateName() string {
	if t.State == StatePending && t.Attempts > 0 {
		return StateNameRetrying
	}
	return t.State.String()
}

// ValidStateName reports whether name is one of the five state names.
func ValidStateName(name string) bool {
	switch name {
	case StateNamePending, StateNameRetrying, StateNameDelivered, StateNameFailed, StateNameCancelled:
		return true
	}
	return false
}

// FireAt is when the timer is armed to fire: its due time, or, once an
// attempt failed, its next attempt time (never earlier than Due).
func (t *Timer) FireAt() int64 { return max(t.Due, t.Next) }

// Attempt is the 1-based number of the delivery attempt that runs next:
// what transports send as x-skyring-attempt.
func (t *Timer) Attempt() int { return t.Attempts + 1 }

// DataString reports whether Data is a JSON string and, if so, its value.
func (t *Timer) DataString() (string, bool) {
	if len(t.Data) == 0 || t.Data[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(t.Data, &s); err != nil {
		return "", false
	}
	return s, true
}

// Body is what a transport sends for this timer's data: a string verbatim,
// an object as JSON, nothing for no data. isJSON tells an object from a
// string.
func (t *Timer) Body() (body []byte, isJSON bool) {
	if len(t.Data) == 0 {
		return nil, false
	}
	if s, ok := t.DataString(); ok {
		return []byte(s), false
	}
	return t.Data, true
}

// DueTime returns Due as a time.Time.
func (t *Timer) DueTime() time.Time { return time.Unix(0, t.Due) }

// Info is the JSON shape of a timer on GET /timer/:id, in lists, and in the
// NATS get reply. The fields up to Node are the original's; the others
// tell the timer's fate.
type Info struct {
	ID       string          `json:"id"`
	Timeout  int64           `json:"timeout"` // ms, due minus created
	Data     json.RawMessage `json:"data"`    // null when none
	Callback Callback        `json:"callback"`
	Created  int64           `json:"created"` // Unix ms
	Due      int64           `json:"due"`     // Unix ms
	Node     string          `json:"node"`    // owner id

	State       string `json:"state"`                  // pending, retrying, delivered, failed, cancelled
	Attempts    int    `json:"attempts"`               // delivery attempts made so far
	NextAttempt int64  `json:"next_attempt,omitempty"` // Unix ms, while retrying
	LastError   string `json:"last_error,omitempty"`   // the last failed attempt's error
	LastStatus  int    `json:"last_status,omitempty"`  // the receiver's status in the last attempt
	DeliveredAt int64  `json:"delivered_at,omitempty"` // Unix ms, once delivered
	FinishedAt  int64  `json:"finished_at,omitempty"`  // Unix ms: delivered, failed or cancelled
}

// Info returns the public view of t, owned by node.
func (t *Timer) Info(node string) Info {
	data := t.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	i := Info{
		ID:         t.ID,
		Timeout:    (t.Due - t.Created) / int64(time.Millisecond),
		Data:       data,
		Callback:   t.Callback,
		Created:    t.Created / int64(time.Millisecond),
		Due:        t.Due / int64(time.Millisecond),
		Node:       node,
		State:      t.StateName(),
		Attempts:   t.Attempts,
		LastError:  t.LastError,
		LastStatus: t.LastStatus,
		FinishedAt: t.Finished / int64(time.Millisecond),
	}
	if t.State == StatePending && t.Attempts > 0 {
		i.NextAttempt = t.Next / int64(time.Millisecond)
	}
	if t.State == StateDelivered {
		i.DeliveredAt = i.FinishedAt
	}
	return i
}

// MaxIDLen is the longest id accepted, in bytes.
const MaxIDLen = 256

// ValidateID checks the id rules of the public API: 1-256 bytes of printable
// ASCII ('!' to '~'), no '/'.
func ValidateID(id string) error {
	if len(id) == 0 {
		return invalid("id", "Timer id must not be empty")
	}
	if len(id) > MaxIDLen {
		return invalid("id", "Timer id longer than %d bytes", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < '!' || c > '~' || c == '/' {
			return invalid("id", "Timer id may hold only printable ASCII without spaces or '/'")
		}
	}
	return nil
}

// Binary encoding of a Timer, used by storage and by node-to-node relays.
//
//	version byte (1 or 2)
//	uvarint len + ID
//	varint Created, varint Due
//	uvarint len + Data
//	uvarint len + Transport, uvarint len + Method, uvarint len + URI
//	versions 2 and 3:
//	uvarint Attempts, varint Next,
//	uvarint Retry.Attempts, uvarint Retry.MinBackoff, uvarint Retry.MaxBackoff
//	version 3 only:
//	byte State, varint Finished, uvarint LastStatus, uvarint len + LastError,
//	uvarint Moves
//
// A timer without retry policy, delivery state or fate is written as
// version 1, byte for byte what builds before retries wrote, so that
// records and hand-offs of plain timers stay readable by those builds; one
// with a retry policy or failed attempts but no fate is version 2 (what
// builds with retries but before fates wrote); the others are version 3.
// Every version decodes.
const (
	encodingVersion      = 1
	encodingVersionRetry = 2
	encodingVersionFate  = 3
)

// ErrCorrupt is returned when a stored or relayed timer cannot be decoded.
var ErrCorrupt = errors.New("skyring: corrupt timer encoding")

// hasRetryState reports whether t needs the version 2 encoding.
func (t *Timer) hasRetryState() bool {
	return t.Attempts != 0 || t.Next != 0 || t.Callback.Retry != (Retry{})
}

// hasFate reports whether t needs the version 3 encoding.
func (t *Timer) hasFate() bool {
	return t.State != StatePending || t.Finished != 0 || t.LastStatus != 0 || t.LastError != "" || t.Moves != 0
}

// AppendBinary appends the binary encoding of t to b.
func (t *Timer) AppendBinary(b []byte) ([]byte, error) {
	v3 := t.hasFate()
	v2 := v3 || t.hasRetryState()
	switch {
	case v3:
		b = append(b, encodingVersionFate)
	case v2:
		b = append(b, encodingVersionRetry)
	default:
		b = append(b, encodingVersion)
	}
	b = wire.AppendString(b, t.ID)
	b = wire.AppendVarint(b, t.Created)
	b = wire.AppendVarint(b, t.Due)
	b = wire.AppendBytes(b, t.Data)
	b = wire.AppendString(b, t.Callback.Transport)
	b = wire.AppendString(b, t.Callback.Method)
	b = wire.AppendString(b, t.Callback.URI)
	if v2 {
		r := t.Callback.Retry
		b = wire.AppendUvarint(b, uint64(max(t.Attempts, 0)))
		b = wire.AppendVarint(b, t.Next)
		b = wire.AppendUvarint(b, uint64(max(r.Attempts, 0)))
		b = wire.AppendUvarint(b, uint64(max(r.MinBackoff, 0)))
		b = wire.AppendUvarint(b, uint64(max(r.MaxBackoff, 0)))
	}
	if v3 {
		b = append(b, byte(t.State))
		b = wire.AppendVarint(b, t.Finished)
		b = wire.AppendUvarint(b, uint64(max(t.LastStatus, 0)))
		b = wire.AppendString(b, t.LastError)
		b = wire.AppendUvarint(b, uint64(t.Moves))
	}
	return b, nil
}

// MarshalBinary encodes t.
func (t *Timer) MarshalBinary() ([]byte, error) {
	n := 2 + 7*wire.MaxLenPrefix + 10*wire.MaxVarintLen + len(t.ID) + len(t.Data) +
		len(t.Callback.Transport) + len(t.Callback.Method) + len(t.Callback.URI) + len(t.LastError)
	return t.AppendBinary(make([]byte, 0, n))
}

// retryState is what version 2 adds to a record.
type retryState struct {
	attempts int
	next     int64
	policy   Retry
}

// readRetryState reads the version 2 fields; values out of range (a
// count over 2^31-1, a negative backoff) leave r with an error.
func readRetryState(r *wire.Reader[[]byte]) (retryState, bool) {
	const maxInt = 1<<31 - 1
	attempts, next := r.Uvarint(), r.Varint()
	ra, rmin, rmax := r.Uvarint(), r.Uvarint(), r.Uvarint()
	if attempts > maxInt || ra > maxInt || rmin > math.MaxInt64 || rmax > math.MaxInt64 {
		return retryState{}, false
	}
	return retryState{
		attempts: int(attempts), next: next,
		policy: Retry{Attempts: int(ra), MinBackoff: int64(rmin), MaxBackoff: int64(rmax)},
	}, true
}

// fateState is what version 3 adds to a record.
type fateState struct {
	state      State
	finished   int64
	lastStatus int
	lastError  []byte
	moves      uint32
}

// readFate reads the version 3 fields.
func readFate(r *wire.Reader[[]byte]) (fateState, bool) {
	st := State(r.Byte())
	finished, status := r.Varint(), r.Uvarint()
	lastError := r.Field()
	moves := r.Uvarint()
	if st >= stateEnd || status > 999 || moves > math.MaxUint32 {
		return fateState{}, false
	}
	return fateState{state: st, finished: finished, lastStatus: int(status), lastError: lastError, moves: uint32(moves)}, true
}

// UnmarshalBinary decodes what MarshalBinary encoded (either version).
// Nothing it sets aliases b, and t is left alone if b is corrupt. The four
// strings share one allocation (sliced from one string) and Data gets its
// own: a []byte cannot share memory with a string without package unsafe,
// which this package does not use.
func (t *Timer) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] < encodingVersion || b[0] > encodingVersionFate {
		return fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	r := wire.NewReader(b[1:])
	id := r.Field()
	created, due := r.Varint(), r.Varint()
	data := r.Field()
	transport, method, uri := r.Field(), r.Field(), r.Field()
	var rs retryState
	if b[0] >= encodingVersionRetry {
		var ok bool
		if rs, ok = readRetryState(&r); !ok {
			return fmt.Errorf("%w: retry state out of range", ErrCorrupt)
		}
	}
	var fs fateState
	if b[0] >= encodingVersionFate {
		var ok bool
		if fs, ok = readFate(&r); !ok {
			return fmt.Errorf("%w: fate out of range", ErrCorrupt)
		}
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	// Measured against the zero-copy (unsafe) decoder this replaced: about
	// 40 ns and one allocation more per decode (BenchmarkUnmarshalBinary),
	// not measurable in a relay round trip. Reading from string(b) instead
	// would be a little faster but would copy Data twice and keep the copy
	// alive as long as any of the strings.
	strs := joinStrings(id, transport, method, uri, fs.lastError)
	t.ID, strs = strs[:len(id)], strs[len(id):]
	t.Callback.Transport, strs = strs[:len(transport)], strs[len(transport):]
	t.Callback.Method, strs = strs[:len(method)], strs[len(method):]
	t.Callback.URI, t.LastError = strs[:len(uri)], strs[len(uri):]
	t.State, t.Finished, t.LastStatus, t.Moves = fs.state, fs.finished, fs.lastStatus, fs.moves
	t.Fence, t.Relative = 0, false // neither is stored: a decoded timer is absolute
	t.Callback.Retry = rs.policy
	t.Created, t.Due = created, due
	t.Attempts, t.Next = rs.attempts, rs.next
	t.Data = nil
	if len(data) > 0 {
		t.Data = bytes.Clone(data)
	}
	return nil
}

// joinStrings returns the parts as one string, in one allocation.
func joinStrings(parts ...[]byte) string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, p := range parts {
		sb.Write(p)
	}
	return sb.String()
}
