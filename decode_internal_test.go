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

// BenchmarkDecodeObject measures what the hand-written scanner replaces:
// pulling the raw values of a create body's members (and of its callback's)
// out of the JSON. "scanner" is decodeObject and scanObject as ParseTimer
// uses them; "json-map" is encoding/json into map[string]json.RawMessage,
// the standard way with the same semantics (exact keys, last duplicate
// wins); "json-struct" is encoding/json into a struct of json.RawMessage,
// faster than the map but wrong for the contract, since it matches keys
// case-insensitively ("Timeout" would set timeout).
func BenchmarkDecodeObject(b *testing.B) {
	bodies := map[string][]byte{
		"small":  []byte(`{"timeout":60000,"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:8080/hook"}}`),
		"object": []byte(`{"timeout":"60000","data":{ "order" : 42, "items" : [ "a", "b" ] },"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:8080/hook"}}`),
	}
	sink := 0
	for name, body := range bodies {
		b.Run(name+"/scanner", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				o, err := decodeObject(body)
				if err != nil {
					b.Fatal(err)
				}
				timeout, _ := o.get("timeout")
				data, _ := o.get("data")
				cbRaw, _ := o.get("callback")
				cb := scanObject(cbRaw)
				tr, _ := cb.get("transport")
				me, _ := cb.get("method")
				uri, _ := cb.get("uri")
				sink += len(timeout) + len(data) + len(tr) + len(me) + len(uri)
			}
		})
		b.Run(name+"/json-map", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var o, cb map[string]json.RawMessage
				if err := json.Unmarshal(body, &o); err != nil {
					b.Fatal(err)
				}
				if err := json.Unmarshal(o["callback"], &cb); err != nil {
					b.Fatal(err)
				}
				sink += len(o["timeout"]) + len(o["data"]) + len(cb["transport"]) + len(cb["method"]) + len(cb["uri"])
			}
		})
		b.Run(name+"/json-struct", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var v struct {
					Timeout, At, Data, ID json.RawMessage
					Callback              struct{ Transport, Method, URI json.RawMessage }
				}
				if err := json.Unmarshal(body, &v); err != nil {
					b.Fatal(err)
				}
				sink += len(v.Timeout) + len(v.Data) + len(v.Callback.Transport) + len(v.Callback.Method) + len(v.Callback.URI)
			}
		})
	}
	_ = sink
}
