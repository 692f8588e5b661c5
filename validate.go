package skyring

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// DefaultMaxTimeout is the largest timeout accepted by default, in
// milliseconds: 2^31-1, about 24.8 days, as the original (setTimeout's limit).
const DefaultMaxTimeout int64 = math.MaxInt32

// DefaultMaxBodyBytes is the largest request body accepted by default, in
// bytes: 1 MiB, as the original (API.md section 2). The HTTP edge and the
// NATS API both apply it; it is untyped so that int and int64 limits can
// take it as it is.
const DefaultMaxBodyBytes = 1 << 20

// DefaultPrefix starts every public NATS subject by default (API.md section
// 4): skyring.timer.create, skyring.events.create, skyring.node.ready.
const DefaultPrefix = "skyring"

// DefaultHTTPPort is the public HTTP API's port by default (API.md section
// 6, as the original).
const DefaultHTTPPort = 3000

// MaxTimeoutLimit is the largest bound an operator may set (about 100
// years), so that due times stay within int64 nanoseconds.
const MaxTimeoutLimit int64 = 100 * 365 * 24 * 3600 * 1000

// ParseParams carries what ParseTimer needs besides the body.
type ParseParams struct {
	// Now is the moment the node accepts the request; timeout counts from it.
	Now time.Time
	// MaxTimeout is the largest accepted timeout in ms; 0 means
	// DefaultMaxTimeout.
	MaxTimeout int64
	// ID is the id given outside the body (URL path, x-timer-id header). If
	// it and the body's id are both empty, ParseTimer generates a UUID.
	ID string
	// IDField makes ParseTimer read an "id" string field from the body, as
	// the NATS API does. A non-empty body id wins over ID.
	IDField bool
}

// ParseTimer decodes and validates a create or update body (API.md section
// 1) and returns the timer it describes, created at p.Now. A timer given
// with timeout is Relative (its owner counts the timeout again from when it
// stores it); one given with at is not. Every rejection is a
// *ValidationError whose Reason is meant for the client.
func ParseTimer(body []byte, p ParseParams) (*Timer, error) {
	fields, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	max := p.MaxTimeout
	if max <= 0 {
		max = DefaultMaxTimeout
	}
	max = min(max, MaxTimeoutLimit)
	t := &Timer{ID: p.ID}
	if p.IDField {
		if raw, ok := fields.get("id"); ok && !isNull(raw) {
			id, ok := unquote(raw)
			if !ok {
				return nil, invalid("id", "id must be a string")
			}
			if id != "" {
				t.ID = id
			}
		}
	}
	if t.ID == "" {
		t.ID = NewID()
	} else if err := ValidateID(t.ID); err != nil {
		return nil, err
	}

	now := p.Now.UnixNano()
	t.Created = now
	rawTimeout, hasTimeout := fields.get("timeout")
	rawAt, hasAt := fields.get("at")
	if hasAt && isNull(rawAt) {
		hasAt = false
	}
	if hasTimeout && isNull(rawTimeout) && hasAt {
		hasTimeout = false
	}
	switch {
	case hasTimeout && hasAt:
		return nil, invalid("at", "Give either timeout or at, not both")
	case hasAt:
		due, err := parseAt(rawAt)
		if err != nil {
			return nil, err
		}
		if due <= now {
			return nil, invalid("at", "at must lie in the future")
		}
		if due-now > max*int64(time.Millisecond) {
			return nil, invalid("at", "at must lie within %d ms from now (the node's --timer:max)", max)
		}
		t.Due = due
	case hasTimeout:
		ms, ok := parseNumber(rawTimeout, true)
		if !ok {
			return nil, invalid("timeout", "timeout must be a number of milliseconds")
		}
		ms = math.Trunc(ms)
		if ms < 1 || ms > float64(max) {
			return nil, invalid("timeout", "timeout must be between 1 and %d milliseconds", max)
		}
		t.Due = now + int64(ms)*int64(time.Millisecond)
		t.Relative = true
	default:
		return nil, invalid("timeout", "timeout is required")
	}

	if raw, ok := fields.get("data"); ok && !isNull(raw) {
		switch raw[0] {
		case '"':
			t.Data = bytes.Clone(raw)
		case '{':
			if bytes.ContainsAny(raw, " \t\r\n") {
				var buf bytes.Buffer
				buf.Grow(len(raw))
				if err := json.Compact(&buf, raw); err != nil {
					return nil, invalid("data", "Invalid JSON in data")
				}
				t.Data = buf.Bytes()
			} else {
				t.Data = bytes.Clone(raw)
			}
		default:
			return nil, invalid("data", "data must be a string, an object or null")
		}
	}

	rawCb, ok := fields.get("callback")
	if !ok || isNull(rawCb) {
		return nil, invalid("callback", "callback is required")
	}
	if rawCb[0] != '{' {
		return nil, invalid("callback", "callback must be an object")
	}
	cb := scanObject(rawCb) // valid: the whole body was checked
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"transport", &t.Callback.Transport},
		{"method", &t.Callback.Method},
		{"uri", &t.Callback.URI},
	} {
		raw, ok := cb.get(f.name)
		if !ok || isNull(raw) {
			return nil, invalid("callback."+f.name, "callback.%s is required", f.name)
		}
		v, ok := unquote(raw)
		if !ok {
			return nil, invalid("callback."+f.name, "callback.%s must be a string", f.name)
		}
		*f.dst = v
		if *f.dst == "" {
			return nil, invalid("callback."+f.name, "callback.%s must not be empty", f.name)
		}
	}
	if raw, ok := cb.get("retry"); ok && !isNull(raw) {
		if t.Callback.Retry, err = parseRetry(raw); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ParseID reads the "id" field of a NATS cancel or get body.
func ParseID(body []byte) (string, error) {
	var v struct {
		ID *string `json:"id"`
	}
	fields, err := decodeObject(body)
	if err != nil {
		return "", err
	}
	raw, ok := fields.get("id")
	if !ok || isNull(raw) {
		return "", invalid("id", "id is required")
	}
	if err := json.Unmarshal(raw, &v.ID); err != nil {
		return "", invalid("id", "id must be a string")
	}
	if err := ValidateID(*v.ID); err != nil {
		return "", err
	}
	return *v.ID, nil
}

func parseAt(raw json.RawMessage) (int64, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, invalid("at", "at must be an RFC 3339 time or Unix milliseconds")
		}
		if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
			// UnixNano wraps outside 1678-2262: reject what it cannot hold.
			if ts.Before(time.Unix(0, 0)) || ts.After(time.Unix(0, math.MaxInt64)) {
				return 0, invalid("at", "at is out of range")
			}
			return ts.UnixNano(), nil
		}
	}
	ms, ok := parseNumber(raw, true)
	if !ok {
		return 0, invalid("at", "at must be an RFC 3339 time or Unix milliseconds")
	}
	ms = math.Trunc(ms)
	if ms < 0 || ms > float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0, invalid("at", "at is out of range")
	}
	return int64(ms) * int64(time.Millisecond), nil
}

// parseNumber accepts a JSON number, or (if quoted is true) a JSON string
// whose whole content is a JSON number.
func parseNumber(raw json.RawMessage, quoted bool) (float64, bool) {
	tok := []byte(raw)
	if quoted && len(tok) > 0 && tok[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		tok = []byte(s)
	}
	if !isJSONNumber(tok) {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// isJSONNumber reports whether b is exactly one JSON number token
// (RFC 8259 section 6), with nothing around it.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// Bodies are read by a small hand-written scanner (object, decodeObject,
// scanObject) rather than by encoding/json, for two reasons:
//
//   - Exact keys. The contract names its fields exactly ("timeout", "at",
//     "data", "callback", "id") and ignores any other (API.md section 1), as
//     the original, which reads a JavaScript object, does: "Timeout" is
//     another field. encoding/json matches object keys to struct fields
//     case-insensitively, so a struct would take {"Timeout":0} as a timeout.
//   - Speed, on the hottest path of a create. Decoding into
//     map[string]json.RawMessage keeps keys exact, but allocates the map and
//     every key and value. BenchmarkDecodeObject (decode_internal_test.go),
//     pulling out the members of a create body and of its callback, measured
//     on a 2-vCPU AMD EPYC, go1.26, -cpu 1, fastest of 15 runs: 0.74 µs and
//     2 allocations for the scanner, 3.1 µs and 28 allocations for the map,
//     1.6 µs and 11 allocations for a struct (100-byte body); 0.94 µs, 3.9 µs
//     and 2.2 µs with a nested data object (150 bytes).
//
// The scanner does not check syntax: json.Valid does that first, and
// FuzzDecodeObject checks the scanner against encoding/json.

// object is a JSON object's members as raw spans of the body, in order.
type object []member

type member struct{ key, val []byte }

// get returns the raw value of key; as in a JavaScript object, the last of
// duplicate keys wins.
func (o object) get(key string) (json.RawMessage, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if string(o[i].key) == key {
			return o[i].val, true
		}
	}
	return nil, false
}

// decodeObject checks that body is valid JSON holding one object and returns
// its members (keys matched exactly, as the original does). The values alias
// body.
func decodeObject(body []byte) (object, error) {
	if !json.Valid(body) {
		return nil, invalid("", "Invalid JSON body")
	}
	i := skipWS(body, 0)
	if body[i] != '{' {
		return nil, invalid("", "Request body must be a JSON object")
	}
	return scanObject(body[i:]), nil
}

// scanObject lists the members of the object that b starts with. b must be
// valid JSON (json.Valid): the scan does not check syntax again. A key with
// escapes is unescaped, so "time\u006fut" is timeout.
func scanObject(b []byte) object {
	o := make(object, 0, 8)
	i := 1 // past '{'
	for {
		i = skipWS(b, i)
		if b[i] == '}' {
			return o
		}
		k := i
		i = skipString(b, i)
		key := b[k+1 : i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			_ = json.Unmarshal(b[k:i], &s) // valid JSON string
			key = []byte(s)
		}
		i = skipWS(b, i) + 1 // past ':'
		i = skipWS(b, i)
		v := i
		i = skipValue(b, i)
		o = append(o, member{key: key, val: b[v:i]})
		i = skipWS(b, i)
		if b[i] == ',' {
			i++
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// unquote returns the value of a raw JSON string (a copy).
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// NewID returns a random (version 4) UUID string.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:])
}
