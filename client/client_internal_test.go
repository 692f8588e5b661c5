package client

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

func TestEncodeSpec(t *testing.T) {
	t.Parallel()
	cb := Callback{Transport: "http", Method: "post", URI: "http://x/<y>"}
	at := time.Date(2030, 1, 2, 3, 4, 5, 6007, time.FixedZone("X", 3600))
	for _, tc := range []struct {
		name   string
		spec   TimerSpec
		withID bool
		want   string
	}{
		{"timeout", TimerSpec{Timeout: 1500*time.Millisecond + 999*time.Microsecond, Callback: cb}, false,
			`{"timeout":1500,"callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"sub-ms timeout is sent as 0 for the server to refuse", TimerSpec{Timeout: time.Microsecond, Callback: cb}, false,
			`{"timeout":0,"callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"at in UTC with nanoseconds", TimerSpec{At: at, Callback: cb}, false,
			`{"at":"2030-01-02T02:04:05.000006007Z","callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"id only with withID", TimerSpec{ID: "a", Timeout: time.Second, Callback: cb}, false,
			`{"timeout":1000,"callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"id", TimerSpec{ID: "a", Timeout: time.Second, Callback: cb}, true,
			`{"id":"a","timeout":1000,"callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"string data unescaped", TimerSpec{Timeout: time.Second, Data: "<a&b>", Callback: cb}, false,
			`{"timeout":1000,"data":"<a&b>","callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"bytes as string", TimerSpec{Timeout: time.Second, Data: []byte("raw"), Callback: cb}, false,
			`{"timeout":1000,"data":"raw","callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"object data", TimerSpec{Timeout: time.Second, Data: map[string]string{"k": "<v>"}, Callback: cb}, false,
			`{"timeout":1000,"data":{"k":"<v>"},"callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"raw data compacted", TimerSpec{Timeout: time.Second, Data: json.RawMessage(" {\"k\": 1} "), Callback: cb}, false,
			`{"timeout":1000,"data":{"k":1},"callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
		{"nil raw data", TimerSpec{Timeout: time.Second, Data: json.RawMessage(nil), Callback: cb}, false,
			`{"timeout":1000,"callback":{"transport":"http","method":"post","uri":"http://x/<y>"}}`},
	} {
		got, err := encodeSpec(tc.spec, tc.withID)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, string(got), tc.name)

		// What the client sends is what the server's parser accepts.
		if tc.spec.Timeout >= time.Millisecond {
			tm, err := skyring.ParseTimer(got, skyring.ParseParams{Now: time.Unix(0, 0), IDField: true})
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.spec.Timeout.Truncate(time.Millisecond), time.Duration(tm.Due-tm.Created), tc.name)
			require.Equal(t, cb, tm.Callback)
		}
	}
	got, err := encodeSpec(TimerSpec{At: at, Callback: cb}, false)
	require.NoError(t, err)
	tm, err := skyring.ParseTimer(got, skyring.ParseParams{Now: at.Add(-time.Hour)})
	require.NoError(t, err)
	require.Equal(t, at.UnixNano(), tm.Due, "at travels to the nanosecond")
}

func TestEncodeSpecRejects(t *testing.T) {
	t.Parallel()
	for name, spec := range map[string]TimerSpec{
		"both":          {Timeout: time.Second, At: time.Now()},
		"neither":       {},
		"bad id":        {ID: "a/b", Timeout: time.Second},
		"invalid raw":   {Timeout: time.Second, Data: json.RawMessage("{")},
		"unmarshalable": {Timeout: time.Second, Data: make(chan int)},
	} {
		_, err := encodeSpec(spec, true)
		var ve *skyring.ValidationError
		require.ErrorAs(t, err, &ve, name)
		require.ErrorIs(t, err, skyring.ErrInvalid, name)
	}
}

func TestIDFromLocation(t *testing.T) {
	t.Parallel()
	for loc, want := range map[string]string{
		"/timer/abc":                 "abc",
		"/timer/a%2Fb":               "a/b",
		"/timer/%2541":               "%41",
		"/timer/a%3Fb%23c":           "a?b#c",
		"http://host:3000/timer/abc": "abc",
		"/prefix/timer/abc":          "abc",
		"/timer/..":                  "..",
		"/timer/caf%C3%A9":           "café",
	} {
		got, err := idFromLocation(loc)
		require.NoError(t, err, loc)
		require.Equal(t, want, got, loc)
	}
	for _, loc := range []string{"", "/timer/", "/other/abc", "/timer/%zz", "http://[::1"} {
		_, err := idFromLocation(loc)
		require.Error(t, err, loc)
	}
}

func BenchmarkEncodeSpec(b *testing.B) {
	cb := Callback{Transport: "http", Method: "post", URI: "https://example.com/hooks/reminder"}
	for _, bc := range []struct {
		name string
		data any
	}{
		{"nil", nil},
		{"string", "a reminder for order 42"},
		{"map", map[string]any{"order": 42, "kind": "reminder"}},
		{"raw", json.RawMessage(`{"order":42,"kind":"reminder"}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			spec := TimerSpec{ID: "order-42", Timeout: time.Minute, Data: bc.data, Callback: cb}
			for b.Loop() {
				if _, err := encodeSpec(spec, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
