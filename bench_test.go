package skyring_test

import (
	"testing"

	"github.com/skyring/skyring"
)

// Run with: go test -run='^$' -bench=. -benchmem .

func BenchmarkParseTimer(b *testing.B) {
	bodies := map[string][]byte{
		"timeout": withCB(`"timeout":60000`),
		"object":  withCB(`"timeout":"60000","data":{ "order" : 42, "items" : [ "a", "b" ] }`),
		"at":      withCB(`"at":"2024-03-01T12:01:00.5Z","data":"hello"`),
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			p := skyring.ParseParams{Now: now, ID: "bench-id"}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := skyring.ParseTimer(body, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("generated-id", func(b *testing.B) {
		body := bodies["timeout"]
		p := skyring.ParseParams{Now: now}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := skyring.ParseTimer(body, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchTimer() skyring.Timer {
	return skyring.Timer{
		ID: "550e8400-e29b-41d4-a716-446655440000", Created: 1709294400123456789, Due: 1709294460123456789,
		Data: []byte(`{"order":42,"items":["a","b"]}`), Callback: wantCallback,
	}
}

func BenchmarkMarshalBinary(b *testing.B) {
	tm := benchTimer()
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tm.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendReused", func(b *testing.B) {
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = tm.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnmarshalBinary(b *testing.B) {
	tm := benchTimer()
	enc, err := tm.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	var out skyring.Timer
	for b.Loop() {
		if err := out.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
}
