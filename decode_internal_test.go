package skyring

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeObject checks the hand-written member scanner against
// encoding/json: for every valid JSON object, the same keys (last duplicate
// wins) with the same raw values.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` {"timeout" : 1000 , "data":"x\"}{","callback":{"uri":"a,b}"}} `,
		`{"a":[1,{"b":"]"}],"a":"last"}`, `{"time\u006fut":"1e3"}`, `{"x":null,"y":true,"z":-1.5e-3}`,
		`{"a":"\\","b":"\\\""}`, `[1]`, `null`, `"s"`, `{"a":{"b":{"c":[[]]}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeObject(body)
		var want map[string]json.RawMessage
		werr := json.Unmarshal(body, &want)
		if werr != nil || want == nil {
			if err == nil {
				t.Fatalf("accepted %q, encoding/json says %v", body, werr)
			}
			return
		}
		if !utf8.Valid(body) {
			return // encoding/json rewrites invalid UTF-8 in keys
		}
		if err != nil {
			t.Fatalf("rejected %q: %v", body, err)
		}
		keys := map[string]bool{}
		for _, m := range got {
			keys[string(m.key)] = true
		}
		if len(keys) != len(want) {
			t.Fatalf("%q: keys %v, want %d keys", body, keys, len(want))
		}
		for k, v := range want {
			g, ok := got.get(k)
			if !ok || !bytes.Equal(bytes.TrimSpace(g), bytes.TrimSpace(v)) {
				t.Fatalf("%q: key %q = %q, want %q", body, k, g, v)
			}
		}
	})
}
