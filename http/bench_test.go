package http

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/skyring/skyring"
)

// benchWriter is a reusable ResponseWriter, so that the benchmark counts the
// handler's allocations and not a recorder's.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

var discardLogger = slog.New(slog.DiscardHandler)

// BenchmarkCreate measures POST /timer through NewHandler with a no-op
// Service, in parallel: routing, body read, ParseTimer, headers.
func BenchmarkCreate(b *testing.B) {
	body := []byte(`{"timeout":60000,"data":{"user":42,"action":"remind"},"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:8080/hook"}}`)
	for _, tc := range []struct {
		name string
		id   string
	}{{"server-id", ""}, {"client-id", "order-12345"}} {
		b.Run(tc.name, func(b *testing.B) {
			h := NewHandler(nopService{}, Options{Logger: discardLogger})
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodPost, "/timer", nil)
				if tc.id != "" {
					req.Header.Set("x-timer-id", tc.id)
				}
				rb := &benchBody{}
				w := &benchWriter{h: http.Header{}}
				for pb.Next() {
					rb.Reset(body)
					req.Body = rb
					req.ContentLength = int64(len(body))
					clear(w.h)
					h.ServeHTTP(w, req)
					if w.code != http.StatusCreated {
						b.Fatalf("status %d: %v", w.code, w.h)
					}
				}
			})
		})
	}
}

// BenchmarkParseTimerBaseline is skyring.ParseTimer alone on the body of
// BenchmarkCreate: BenchmarkCreate minus this is the edge's own cost.
func BenchmarkParseTimerBaseline(b *testing.B) {
	body := []byte(`{"timeout":60000,"data":{"user":42,"action":"remind"},"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:8080/hook"}}`)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := skyring.ParseTimer(body, skyring.ParseParams{Now: now, ID: "order-12345"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServer compares POST /timer (no-op Service) with a trivial
// handler over real keep-alive connections at concurrency 64: the edge's
// share of the node's throughput target.
func BenchmarkServer(b *testing.B) {
	body := `{"timeout":60000,"data":{"user":42,"action":"remind"},"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:8080/hook"}}`
	trivial := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"trivial", trivial},
		{"create", NewHandler(nopService{}, Options{Logger: discardLogger})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			url := srv.URL + "/timer"
			b.ReportAllocs()
			b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)) // 64 goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(url, "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
