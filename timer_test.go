package skyring_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

func TestTimerBodyAndDataString(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		data     json.RawMessage
		str      string
		isStr    bool
		body     string
		bodyNil  bool
		bodyJSON bool
	}{
		{name: "nil", data: nil, bodyNil: true},
		{name: "empty", data: json.RawMessage{}, bodyNil: true},
		{name: "string", data: json.RawMessage(`"hello world"`), str: "hello world", isStr: true, body: "hello world"},
		{name: "empty string", data: json.RawMessage(`""`), str: "", isStr: true, body: ""},
		{name: "escaped string", data: json.RawMessage(`"a\"b\\c\n\u00e9\ud83d\ude00"`), str: "a\"b\\c\né😀", isStr: true, body: "a\"b\\c\né😀"},
		{name: "string that looks like JSON", data: json.RawMessage(`"{\"a\":1}"`), str: `{"a":1}`, isStr: true, body: `{"a":1}`},
		{name: "object", data: json.RawMessage(`{"a":1,"b":"c"}`), body: `{"a":1,"b":"c"}`, bodyJSON: true},
		{name: "empty object", data: json.RawMessage(`{}`), body: `{}`, bodyJSON: true},
	}
	for _, tc := range cases {
		tm := &skyring.Timer{Data: tc.data}
		s, ok := tm.DataString()
		require.Equal(t, tc.isStr, ok, tc.name)
		require.Equal(t, tc.str, s, tc.name)
		body, isJSON := tm.Body()
		require.Equal(t, tc.bodyJSON, isJSON, tc.name)
		if tc.bodyNil {
			require.Nil(t, body, tc.name)
			continue
		}
		require.Equal(t, tc.body, string(body), tc.name)
	}
}

// TestTimerBodyFromParse runs the bodies the transports send through the
// parser: a string data is sent verbatim, an object as compact JSON, none
// as nothing (API.md section 3).
func TestTimerBodyFromParse(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		body   string
		isJSON bool
		isNil  bool
	}{
		``:                          {isNil: true},
		`null`:                      {isNil: true},
		`"plain text ☃"`:            {body: "plain text ☃"},
		`"line1\nline2"`:            {body: "line1\nline2"},
		`{ "k" : [ "v" , 1 ] }`:     {body: `{"k":["v",1]}`, isJSON: true},
		`{"nested":{"deep":{}}}`:    {body: `{"nested":{"deep":{}}}`, isJSON: true},
		`{"s":"with \"quotes\" ☃"}`: {body: `{"s":"with \"quotes\" ☃"}`, isJSON: true},
	}
	for data, want := range cases {
		fields := `"timeout":1`
		if data != "" {
			fields += `,"data":` + data
		}
		tm, err := skyring.ParseTimer(withCB(fields), params())
		require.NoError(t, err, data)
		body, isJSON := tm.Body()
		require.Equal(t, want.isJSON, isJSON, data)
		if want.isNil {
			require.Nil(t, body, data)
		} else {
			require.Equal(t, want.body, string(body), data)
		}
	}
}

func TestTimerInfo(t *testing.T) {
	t.Parallel()
	created := time.Date(2024, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
	tm := &skyring.Timer{
		ID:       "abc",
		Created:  created.UnixNano(),
		Due:      created.Add(90*time.Second + 999*time.Microsecond).UnixNano(),
		Data:     json.RawMessage(`{"a":1}`),
		Callback: wantCallback,
	}
	info := tm.Info("node-1")
	require.Equal(t, skyring.Info{
		ID:       "abc",
		Timeout:  90_000, // sub-ms part cut
		Data:     json.RawMessage(`{"a":1}`),
		Callback: wantCallback,
		Created:  created.UnixMilli(),
		Due:      created.Add(90*time.Second + 999*time.Microsecond).UnixMilli(),
		Node:     "node-1",
		State:    "pending",
	}, info)
	require.Equal(t, time.Unix(0, tm.Due), tm.DueTime())

	out, err := json.Marshal(info)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"abc","timeout":90000,"data":{"a":1},"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1/hook"},`+
		`"created":1709294400123,"due":1709294490124,"node":"node-1","state":"pending","attempts":0}`, string(out))

	// No data: null, not absent.
	for _, data := range []json.RawMessage{nil, {}} {
		tm.Data = data
		info = tm.Info("node-1")
		require.Equal(t, "null", string(info.Data))
		out, err = json.Marshal(info)
		require.NoError(t, err)
		require.Contains(t, string(out), `"data":null`)
	}

	// A string data shows as a JSON string.
	tm.Data = json.RawMessage(`"hi"`)
	out, err = json.Marshal(tm.Info("n"))
	require.NoError(t, err)
	require.Contains(t, string(out), `"data":"hi"`)

	// The round trip through Info JSON keeps everything a client sees.
	var back skyring.Info
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, tm.Info("n"), back)
}

func binaryCases() map[string]skyring.Timer {
	big := make([]byte, 0, 1<<20+2)
	big = append(big, '"')
	big = append(big, bytes.Repeat([]byte("abcdefgh"), (1<<20)/8)...)
	big = append(big, '"')
	return map[string]skyring.Timer{
		"zero": {},
		"typical": {
			ID: "550e8400-e29b-41d4-a716-446655440000", Created: 1709294400123456789, Due: 1709294460123456789,
			Data: json.RawMessage(`{"order":42}`), Callback: wantCallback,
		},
		"string data":   {ID: "s", Created: 1, Due: 2, Data: json.RawMessage(`"text"`), Callback: wantCallback},
		"nil data":      {ID: "n", Created: 1, Due: 2, Data: nil, Callback: wantCallback},
		"empty strings": {ID: "", Created: 0, Due: 0, Callback: skyring.Callback{}},
		"unicode": {
			ID: "~!", Data: json.RawMessage(`"日本語 ☃ \u00e9 😀"`),
			Callback: skyring.Callback{Transport: "trånspört", Method: "PÖST", URI: "http://例え.テスト/パス?q=☃"},
		},
		"negative and extreme times": {ID: "x", Created: math.MinInt64, Due: math.MaxInt64, Callback: wantCallback},
		"negative times":             {ID: "y", Created: -1, Due: -1_000_000_000, Callback: wantCallback},
		"binary junk in strings": {
			ID: "\x00\xff", Data: json.RawMessage("\x00\x01\xfe"),
			Callback: skyring.Callback{Transport: "\n", Method: "\x80", URI: strings.Repeat("u", 300)},
		},
		"1 MiB data": {ID: "big", Created: 10, Due: 20, Data: big, Callback: wantCallback},
		"retry policy": {
			ID: "r", Created: 1, Due: 2,
			Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://h/", Retry: skyring.Retry{Attempts: 5, MinBackoff: 1000, MaxBackoff: 3600000}},
		},
		"retry state":             {ID: "r2", Created: 1, Due: 2, Attempts: 3, Next: 1709294460123456789, Callback: wantCallback},
		"retry extreme":           {ID: "r3", Attempts: math.MaxInt32, Next: math.MinInt64, Callback: skyring.Callback{Retry: skyring.Retry{Attempts: math.MaxInt32, MinBackoff: math.MaxInt64, MaxBackoff: 1}}},
		"delivered":               {ID: "f1", Created: 1, Due: 2, Attempts: 3, Next: 5, State: skyring.StateDelivered, Finished: 1709294460123456789, LastError: "status 503", LastStatus: 503, Callback: wantCallback},
		"failed":                  {ID: "f2", Attempts: 1, State: skyring.StateFailed, Finished: -1, LastError: "日本 \x00", LastStatus: 999, Callback: wantCallback},
		"cancelled":               {ID: "f3", State: skyring.StateCancelled, Finished: 7, Callback: wantCallback},
		"moved":                   {ID: "f5", Moves: math.MaxUint32, Callback: wantCallback},
		"pending with last error": {ID: "f4", Attempts: 2, Next: 9, LastError: "dial tcp: refused", Callback: wantCallback},
		"long fields": {
			ID:       strings.Repeat("i", skyring.MaxIDLen),
			Callback: skyring.Callback{Transport: strings.Repeat("t", 200), Method: strings.Repeat("m", 128), URI: strings.Repeat("/p", 40_000)},
		},
	}
}

func TestTimerBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	for name, want := range binaryCases() {
		b, err := want.MarshalBinary()
		require.NoError(t, err, name)
		var got skyring.Timer
		require.NoError(t, got.UnmarshalBinary(b), name)
		require.Equal(t, want, got, name)

		// Decoding into a used Timer replaces every field.
		used := skyring.Timer{ID: "old", Created: 7, Due: 8, Data: json.RawMessage(`"old"`), Callback: skyring.Callback{Transport: "a", Method: "b", URI: "c"}}
		require.NoError(t, used.UnmarshalBinary(b), name)
		require.Equal(t, want, used, name)

		// Encoding is deterministic.
		b2, err := got.MarshalBinary()
		require.NoError(t, err, name)
		require.Equal(t, b, b2, name)
	}
}

// TestTimerBinaryRelativeNotStored: Relative is a request-time property;
// the storage encoding neither carries nor changes for it, and a decoded
// timer is absolute, even when decoded into a relative one.
func TestTimerBinaryRelativeNotStored(t *testing.T) {
	t.Parallel()
	for name, tm := range binaryCases() {
		abs, err := tm.MarshalBinary()
		require.NoError(t, err, name)
		rel := tm
		rel.Relative = true
		b, err := rel.MarshalBinary()
		require.NoError(t, err, name)
		require.Equal(t, abs, b, name)

		got := skyring.Timer{Relative: true}
		require.NoError(t, got.UnmarshalBinary(b), name)
		require.False(t, got.Relative, name)
		require.Equal(t, tm, got, name)
	}
}

func TestTimerBinaryEmptyDataDecodesNil(t *testing.T) {
	t.Parallel()
	b, err := (&skyring.Timer{ID: "x", Data: json.RawMessage{}}).MarshalBinary()
	require.NoError(t, err)
	var got skyring.Timer
	require.NoError(t, got.UnmarshalBinary(b))
	require.Nil(t, got.Data)
}

func TestTimerAppendBinary(t *testing.T) {
	t.Parallel()
	for name, tm := range binaryCases() {
		alone, err := tm.MarshalBinary()
		require.NoError(t, err)

		prefix := []byte("prefix:")
		buf := append(make([]byte, 0, 4), prefix...)
		out, err := tm.AppendBinary(buf)
		require.NoError(t, err, name)
		require.Equal(t, prefix, out[:len(prefix)], name)
		require.Equal(t, alone, out[len(prefix):], name)

		// Appending twice lays two decodable records side by side.
		out, err = tm.AppendBinary(out)
		require.NoError(t, err, name)
		require.Equal(t, alone, out[len(prefix)+len(alone):], name)

		var got skyring.Timer
		require.NoError(t, got.UnmarshalBinary(out[len(prefix)+len(alone):]), name)
		require.Equal(t, tm, got, name)
	}

	// AppendBinary to nil works like MarshalBinary.
	tm := binaryCases()["typical"]
	a, err := tm.AppendBinary(nil)
	require.NoError(t, err)
	m, err := tm.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, m, a)
}

func TestTimerUnmarshalBinaryDoesNotAlias(t *testing.T) {
	t.Parallel()
	for name, want := range binaryCases() {
		b, err := want.MarshalBinary()
		require.NoError(t, err)
		var got skyring.Timer
		require.NoError(t, got.UnmarshalBinary(b), name)
		for i := range b {
			b[i] ^= 0xff
		}
		require.Equal(t, want, got, "%s: decoded timer changed when the input buffer was overwritten", name)
	}

	// Writing to the decoded Data (or appending to it) leaves the strings
	// that share its allocation alone.
	src := skyring.Timer{ID: "id", Data: json.RawMessage(`"data"`), Callback: skyring.Callback{Transport: "t", Method: "m", URI: "u"}}
	b, err := src.MarshalBinary()
	require.NoError(t, err)
	var got skyring.Timer
	require.NoError(t, got.UnmarshalBinary(b))
	got.Data[1] = 'X'
	_ = append(got.Data, "overflow into the next field"...)
	require.Equal(t, "id", got.ID)
	require.Equal(t, skyring.Callback{Transport: "t", Method: "m", URI: "u"}, got.Callback)
	require.Equal(t, `"Xata"`, string(got.Data))
}

func TestTimerUnmarshalBinaryCorrupt(t *testing.T) {
	t.Parallel()
	requireCorrupt := func(b []byte, msg string) {
		t.Helper()
		var tm skyring.Timer
		var err error
		require.NotPanics(t, func() { err = tm.UnmarshalBinary(b) }, msg)
		require.ErrorIs(t, err, skyring.ErrCorrupt, msg)
	}

	// A failed decode leaves the timer as it was.
	used := binaryCases()["typical"]
	require.Error(t, used.UnmarshalBinary([]byte{1, 1, 'x', 2}))
	require.Equal(t, binaryCases()["typical"], used)

	requireCorrupt(nil, "nil")
	requireCorrupt([]byte{}, "empty")
	for _, v := range []byte{0, 2, 0x7f, 0xff} {
		requireCorrupt([]byte{v, 0, 0, 0, 0, 0, 0, 0}, "version")
	}
	requireCorrupt([]byte{1}, "version only")
	requireCorrupt([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "uvarint overflow")
	requireCorrupt([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'}, "length 2^64-1")
	requireCorrupt([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, "unterminated uvarint")
	requireCorrupt([]byte{1, 5, 'a', 'b'}, "id longer than the input")
	requireCorrupt([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "varint overflow")
	requireCorrupt([]byte{1, 0, 0x80}, "unterminated varint")
	requireCorrupt(bytes.Repeat([]byte{0xff}, 64), "all ones")

	// Every strict prefix of a valid encoding is truncated.
	for name, tm := range binaryCases() {
		if name == "1 MiB data" || name == "long fields" {
			continue // quadratic; the small cases cover every cut point
		}
		b, err := tm.MarshalBinary()
		require.NoError(t, err)
		for n := 0; n < len(b); n++ {
			requireCorrupt(b[:n:n], name+": prefix")
		}
	}
	// The big one, cut inside its data and inside the last field.
	b, err := (&skyring.Timer{ID: "big", Data: bytes.Repeat([]byte("x"), 1<<20), Callback: wantCallback}).MarshalBinary()
	require.NoError(t, err)
	for _, n := range []int{1, 10, len(b) / 2, len(b) - len(wantCallback.URI) - 1, len(b) - 1} {
		requireCorrupt(b[:n], "big: prefix")
	}
}

// TestTimerUnmarshalBinaryTrailingBytes: bytes after the last field mean the
// record is not what MarshalBinary wrote (two records run together, a torn
// or overwritten value), so they should be rejected as corrupt.
func TestTimerUnmarshalBinaryTrailingBytes(t *testing.T) {
	t.Parallel()
	tm := binaryCases()["typical"]
	b, err := tm.MarshalBinary()
	require.NoError(t, err)
	var got skyring.Timer
	err = got.UnmarshalBinary(append(b, 0x00, 'j', 'u', 'n', 'k'))
	require.ErrorIs(t, err, skyring.ErrCorrupt)
}

// TestTimerBinaryGolden decodes records written by the encoder as it was
// when stores were first filled (before the codec moved to internal/wire),
// and checks that encoding gives the very same bytes: goleveldb data
// written by any earlier build must still decode.
func TestTimerBinaryGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hex  string
		want skyring.Timer
	}{
		{"0100000000000000", skyring.Timer{}},
		{
			"012435353065383430302d653239622d343164342d613731362d343436363535343430303030" +
				"aab4e2feeb8cd1b82faa949d83ab90d1b82f0c7b226f72646572223a34327d04687474700470" +
				"6f737419687474703a2f2f3132372e302e302e313a383038302f647565",
			skyring.Timer{
				ID: "550e8400-e29b-41d4-a716-446655440000", Created: 1709294400123456789, Due: 1709294460123456789,
				Data:     json.RawMessage(`{"order":42}`),
				Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1:8080/due"},
			},
		},
		{
			"01017301feffffffffffffffff010b22e697a5e69cace8aa9e22046e617473077265717565" +
				"7374086a6f62732e647565",
			skyring.Timer{
				ID: "s", Created: -1, Due: math.MaxInt64, Data: json.RawMessage(`"日本語"`),
				Callback: skyring.Callback{Transport: "nats", Method: "request", URI: "jobs.due"},
			},
		},
	} {
		b, err := hex.DecodeString(tc.hex)
		require.NoError(t, err)
		var got skyring.Timer
		require.NoError(t, got.UnmarshalBinary(b))
		require.Equal(t, tc.want, got)
		again, err := tc.want.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, tc.hex, hex.EncodeToString(again))
	}
}

// TestTimerBinaryGoldenRetry pins the version 2 record (retry policy and
// delivery state), and checks that a timer without either still encodes as
// version 1, the bytes builds before retries read.
func TestTimerBinaryGoldenRetry(t *testing.T) {
	t.Parallel()
	const golden = "02017202040004687474700470" + "6f737409687474703a2f2f682f" + "03aa949d83ab90d1b82f05d00f80dddb01"
	want := skyring.Timer{
		ID: "r", Created: 1, Due: 2, Attempts: 3, Next: 1709294460123456789,
		Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://h/", Retry: skyring.Retry{Attempts: 5, MinBackoff: 2000, MaxBackoff: 3600000}},
	}
	b, err := hex.DecodeString(golden)
	require.NoError(t, err)
	var got skyring.Timer
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, want, got)
	again, err := want.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, golden, hex.EncodeToString(again))

	plain := want
	plain.Attempts, plain.Next, plain.Callback.Retry = 0, 0, skyring.Retry{}
	v1, err := plain.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(1), v1[0], "a timer without retry state keeps the version 1 encoding")

	// A version 2 record whose counts overflow int32 is corrupt.
	end := bytes.Index(b, []byte("http://h/")) + len("http://h/")
	bad := append([]byte{}, b[:end]...)
	bad = append(bad, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0) // attempts 2^32
	require.ErrorIs(t, got.UnmarshalBinary(bad), skyring.ErrCorrupt)
}

// TestTimerBinaryGoldenFate pins the version 3 record (a fate), checks
// that a timer with failed attempts but no fate keeps version 2, and that a
// state or status out of range is corrupt.
func TestTimerBinaryGoldenFate(t *testing.T) {
	t.Parallel()
	want := skyring.Timer{
		ID: "r", Created: 1, Due: 2, Attempts: 2, Next: 3,
		Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://h/"},
		State:    skyring.StateFailed, Finished: 4, LastStatus: 400, LastError: "bad",
	}
	const golden = "03017202040004687474700470" + "6f737409687474703a2f2f682f" + "020600000002" + "0890030362616400"
	b, err := want.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, golden, hex.EncodeToString(b))
	var got skyring.Timer
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, want, got)

	retrying := want
	retrying.State, retrying.Finished, retrying.LastStatus, retrying.LastError = skyring.StatePending, 0, 0, ""
	v2, err := retrying.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(2), v2[0], "failed attempts without a fate keep the version 2 encoding")

	for name, mutate := range map[string]func([]byte){
		"state out of range":  func(b []byte) { b[len(b)-9] = 4 },
		"status out of range": func(b []byte) { b[len(b)-7], b[len(b)-6] = 0xe8, 0x07 }, // 1000
	} {
		bad := bytes.Clone(b)
		mutate(bad)
		require.ErrorIs(t, got.UnmarshalBinary(bad), skyring.ErrCorrupt, name)
	}
}

// TestTimerStateNames: what the APIs show for each stored state, and which
// names a list filter accepts.
func TestTimerStateNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tm   skyring.Timer
		want string
	}{
		{skyring.Timer{}, "pending"},
		{skyring.Timer{Attempts: 1, Next: 5}, "retrying"},
		{skyring.Timer{State: skyring.StateDelivered, Attempts: 1}, "delivered"},
		{skyring.Timer{State: skyring.StateFailed, Attempts: 5}, "failed"},
		{skyring.Timer{State: skyring.StateCancelled}, "cancelled"},
	} {
		require.Equal(t, tc.want, tc.tm.StateName())
		require.True(t, skyring.ValidStateName(tc.want))
		require.Equal(t, tc.tm.State != skyring.StatePending, tc.tm.State.Final())
	}
	require.False(t, skyring.ValidStateName("Failed"))
	require.Equal(t, "state(9)", skyring.State(9).String())

	info := (&skyring.Timer{ID: "a", Due: 5e6, Attempts: 2, Next: 9e6, LastError: "boom", LastStatus: 503}).Info("n1")
	require.Equal(t, "retrying", info.State)
	require.EqualValues(t, 9, info.NextAttempt)
	require.Zero(t, info.DeliveredAt)
	info = (&skyring.Timer{ID: "a", Attempts: 3, State: skyring.StateDelivered, Finished: 7e6}).Info("n1")
	require.Equal(t, skyring.Info{ID: "a", Data: json.RawMessage("null"), Node: "n1", State: "delivered", Attempts: 3, DeliveredAt: 7, FinishedAt: 7}, info)
}

func TestTimerFireAtAndAttempt(t *testing.T) {
	t.Parallel()
	tm := skyring.Timer{Due: 100}
	require.Equal(t, int64(100), tm.FireAt())
	require.Equal(t, 1, tm.Attempt())
	tm.Attempts, tm.Next = 2, 500
	require.Equal(t, int64(500), tm.FireAt())
	require.Equal(t, 3, tm.Attempt())
}
