package skyring_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/skyring/skyring"
)

// FuzzTimerBinary: UnmarshalBinary never panics on any input, and whatever it
// accepts encodes and decodes again to the same Timer.
func FuzzTimerBinary(f *testing.F) {
	for _, tm := range binaryCases() {
		if len(tm.Data) > 1<<16 || len(tm.Callback.URI) > 1<<16 {
			continue // keep the corpus small
		}
		b, err := tm.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{1, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}) // non-canonical varints

	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var tm skyring.Timer
		if err := tm.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, skyring.ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(in, b) {
			t.Fatal("UnmarshalBinary wrote to its input")
		}
		if tm.Data != nil && len(tm.Data) == 0 {
			t.Fatal("empty non-nil Data")
		}
		enc, err := tm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again skyring.Timer
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-encoded timer does not decode: %v", err)
		}
		if !timersEqual(tm, again) {
			t.Fatalf("round trip changed the timer:\n%#v\n%#v", tm, again)
		}
		enc2, err := again.MarshalBinary()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %v", err)
		}
	})
}

// FuzzParseTimer: ParseTimer never panics, and either rejects the body with
// a proper *ValidationError or returns a timer that satisfies every rule of
// API.md section 1.
func FuzzParseTimer(f *testing.F) {
	seeds := []string{
		`{"timeout":1000,` + cbJSON + `}`,
		`{"timeout":"1e3","data":"x",` + cbJSON + `}`,
		`{"timeout":1.9,"data":{ "a" : [1, 2] },` + cbJSON + `}`,
		`{"timeout":2147483647,"data":null,` + cbJSON + `}`,
		`{"timeout":2147483648,` + cbJSON + `}`,
		`{"timeout":" 1000",` + cbJSON + `}`,
		`{"timeout":0.5,` + cbJSON + `}`,
		`{"at":"2024-03-01T12:00:01.5+01:00",` + cbJSON + `}`,
		`{"at":"2024-03-01T12:00:00.000000001Z",` + cbJSON + `}`,
		`{"at":1709294401000,` + cbJSON + `}`,
		`{"at":"1709294401000.5",` + cbJSON + `}`,
		`{"at":"9999-01-01T00:00:00Z",` + cbJSON + `}`,
		`{"at":1e300,` + cbJSON + `}`,
		`{"at":null,"timeout":5,` + cbJSON + `}`,
		`{"at":1709294401000,"timeout":null,` + cbJSON + `}`,
		`{"at":1709294401000,"timeout":1,` + cbJSON + `}`,
		`{"id":"abc","timeout":1,` + cbJSON + `}`,
		`{"id":1,"timeout":1,` + cbJSON + `}`,
		`{"id":"a b","timeout":1,` + cbJSON + `}`,
		`{"timeout":1,"callback":{"transport":"","method":"m","uri":"u"}}`,
		`{"timeout":1,"callback":{"transport":"t","method":1,"uri":"u"}}`,
		`{"timeout":1,"callback":[]}`,
		`{"timeout":1,"data":[1],` + cbJSON + `}`,
		`{"Timeout":1,` + cbJSON + `}`,
		`{"timeout":1,"created":0,"extra":[{}],` + cbJSON + `}`,
		``, `null`, `[]`, `{`, `"x"`, `{}`, "{\"timeout\":1,\"data\":\"\xff\xfe\"," + cbJSON + "}",
	}
	for i, s := range seeds {
		f.Add([]byte(s), int64(0), i%2 == 0)
	}
	f.Add([]byte(`{"timeout":3153600000000,`+cbJSON+`}`), int64(1<<62), true)
	f.Add([]byte(`{"timeout":3000,`+cbJSON+`}`), int64(2000), false)
	f.Add([]byte(`{"at":"2262-04-11T23:47:16.854775807Z",`+cbJSON+`}`), int64(-5), true)

	// Now has a sub-millisecond part on purpose.
	fuzzNow := time.Date(2024, 3, 1, 12, 0, 0, 250_000, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, maxTimeout int64, idField bool) {
		p := skyring.ParseParams{Now: fuzzNow, MaxTimeout: maxTimeout, IDField: idField}
		tm, err := skyring.ParseTimer(body, p)
		if err != nil {
			if tm != nil {
				t.Fatal("timer and error both returned")
			}
			if msg := checkValidationError(err); msg != "" {
				t.Fatalf("rejection %q: %s", err, msg)
			}
			return
		}
		max := maxTimeout
		if max <= 0 {
			max = skyring.DefaultMaxTimeout
		}
		max = min(max, skyring.MaxTimeoutLimit)

		if tm.Created != fuzzNow.UnixNano() {
			t.Fatalf("Created %d, want %d", tm.Created, fuzzNow.UnixNano())
		}
		d := tm.Due - tm.Created
		if d <= 0 || d > max*int64(time.Millisecond) {
			t.Fatalf("due - created = %d ns, want within (0, %d ms]", d, max)
		}
		// Through timeout the delay is a whole number of ms, at least 1. (Through
		// `at` it only has to be strictly positive: the timeout a client reads
		// back may then be 0 ms, see TestParseTimerAtSubMillisecond.)
		var fields map[string]json.RawMessage
		if json.Unmarshal(body, &fields) != nil {
			t.Fatal("accepted a body that is not a JSON object")
		}
		if at, ok := fields["at"]; !ok || string(at) == "null" {
			if d%int64(time.Millisecond) != 0 || d/int64(time.Millisecond) < 1 {
				t.Fatalf("timeout delay %d ns is not a whole number of ms >= 1", d)
			}
			if _, ok := fields["timeout"]; !ok {
				t.Fatal("accepted a timer with neither timeout nor at")
			}
			if !tm.Relative {
				t.Fatal("a timer given with timeout is not relative")
			}
		} else {
			if tt, ok := fields["timeout"]; ok && string(tt) != "null" {
				t.Fatal("accepted a body with both timeout and at")
			}
			if tm.Relative {
				t.Fatal("a timer given with at is relative")
			}
		}
		if err := skyring.ValidateID(tm.ID); err != nil {
			t.Fatalf("invalid id %q: %v", tm.ID, err)
		}
		if tm.Callback.Transport == "" || tm.Callback.Method == "" || tm.Callback.URI == "" {
			t.Fatalf("empty callback field: %+v", tm.Callback)
		}
		if tm.Data != nil {
			if len(tm.Data) == 0 || (tm.Data[0] != '"' && tm.Data[0] != '{') {
				t.Fatalf("data %q is neither a string nor an object", tm.Data)
			}
			if !json.Valid(tm.Data) {
				t.Fatalf("data %q is not valid JSON", tm.Data)
			}
			if tm.Data[0] == '{' {
				var c bytes.Buffer
				if err := json.Compact(&c, tm.Data); err != nil || !bytes.Equal(c.Bytes(), tm.Data) {
					t.Fatalf("object data %q is not compact", tm.Data)
				}
			}
		}
		// A parsed timer survives the binary encoding.
		enc, err := tm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back skyring.Timer
		if err := back.UnmarshalBinary(enc); err != nil || !timersEqual(*tm, back) {
			t.Fatalf("binary round trip: %v", err)
		}
	})
}

func timersEqual(a, b skyring.Timer) bool {
	return a.ID == b.ID && a.Created == b.Created && a.Due == b.Due &&
		bytes.Equal(a.Data, b.Data) && (a.Data == nil) == (b.Data == nil) && a.Callback == b.Callback &&
		a.Attempts == b.Attempts && a.Next == b.Next && a.State == b.State && a.Finished == b.Finished &&
		a.LastError == b.LastError && a.LastStatus == b.LastStatus && a.Moves == b.Moves
}
