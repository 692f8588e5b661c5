package loadgen

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// idScheme names the timers of one run "lg-<8 hex>-<seq>", so the sink tells
// this run's timers from leftovers of other runs and finds a timer's slot
// without a map.
type idScheme struct{ prefix string }

func newIDScheme() idScheme {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return idScheme{prefix: "lg-" + hex.EncodeToString(b[:]) + "-"}
}

func (s idScheme) append(b []byte, seq int) []byte {
	b = append(b, s.prefix...)
	return strconv.AppendInt(b, int64(seq), 10)
}

func (s idScheme) id(seq int) string { return string(s.append(make([]byte, 0, 24), seq)) }

// seq returns the sequence number of one of this run's ids.
func (s idScheme) seq(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, s.prefix)
	if !ok || rest == "" || rest[0] == '+' || rest[0] == '-' {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// bodies builds create bodies and callback bodies. Ids are made of
// [a-z0-9-] only, so nothing but the sink URI needs JSON escaping, and that
// is done once.
type bodies struct {
	ids       idScheme
	object    bool  // DataObject
	timeoutMs int64 // > 0: "timeout" (create mode); else "at"
	tail      string
	pad       string // "xxx…#" before a string's id, or a "pad" field of an object
}

// withPad makes every data carry n padding bytes.
func (b *bodies) withPad(n int) *bodies {
	if n > 0 {
		b.pad = strings.Repeat("x", n)
	}
	return b
}

func newBodies(ids idScheme, object bool, timeout time.Duration, sinkURI string) *bodies {
	uri, _ := json.Marshal(sinkURI) // a string always marshals
	b := &bodies{ids: ids, object: object}
	if timeout > 0 {
		b.timeoutMs = timeout.Milliseconds()
	}
	b.tail = `,"callback":{"transport":"http","method":"post","uri":` + string(uri) + `}}`
	return b
}

// appendCreate appends the JSON create body of timer seq due at Unix ns due:
// {"id":..,"at"|"timeout":..,"data":..,"callback":{..}}. The "id" field is
// read by the NATS API and ignored over HTTP (the x-timer-id header names the
// timer there).
func (b *bodies) appendCreate(dst []byte, seq int, due int64) []byte {
	dst = append(dst, `{"id":"`...)
	dst = b.ids.append(dst, seq)
	if b.timeoutMs > 0 {
		dst = append(dst, `","timeout":`...)
		dst = strconv.AppendInt(dst, b.timeoutMs, 10)
	} else {
		dst = append(dst, `","at":"`...)
		dst = time.Unix(0, due).UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"data":`...)
	if !b.object {
		dst = append(dst, '"')
	}
	dst = b.appendData(dst, seq, due)
	if !b.object {
		dst = append(dst, '"')
	}
	return append(dst, b.tail...)
}

// appendData appends the callback body Skyring sends for timer seq: the
// string "<id>|<due>" verbatim, or the object {"id":"<id>","due":<due>}.
func (b *bodies) appendData(dst []byte, seq int, due int64) []byte {
	if b.object {
		dst = append(dst, `{"id":"`...)
		dst = b.ids.append(dst, seq)
		dst = append(dst, `","due":`...)
		dst = strconv.AppendInt(dst, due, 10)
		if b.pad != "" {
			dst = append(dst, `,"pad":"`...)
			dst = append(dst, b.pad...)
			dst = append(dst, '"')
		}
		return append(dst, '}')
	}
	if b.pad != "" {
		dst = append(dst, b.pad...)
		dst = append(dst, '#')
	}
	dst = b.ids.append(dst, seq)
	dst = append(dst, '|')
	return strconv.AppendInt(dst, due, 10)
}
