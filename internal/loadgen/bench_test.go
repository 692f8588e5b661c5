package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func BenchmarkAppendCreate(b *testing.B) {
	bd := newBodies(newIDScheme(), false, 0, "http://127.0.0.1:9999/cb")
	due := time.Now().UnixNano()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = bd.appendCreate(make([]byte, 0, 256), i, due)
	}
}

// BenchmarkSinkRecord is the sink's cost per callback, without the network.
func BenchmarkSinkRecord(b *testing.B) {
	ids := newIDScheme()
	const n = 1 << 16
	due := time.Now().UnixNano()
	s := newSink(ids, n, func(int) int64 { return due })
	bd := newBodies(ids, false, 0, "")
	reqs := make([]*http.Request, 256)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodPost, "/cb", nil)
		r.Header.Set("X-Skyring-Timer-Id", ids.id(i))
		reqs[i] = r
	}
	bodies := make([]string, len(reqs))
	for i := range bodies {
		bodies[i] = string(bd.appendData(nil, i, due))
	}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := reqs[i%len(reqs)]
		r.Body = nopBody{strings.NewReader(bodies[i%len(reqs)])}
		s.ServeHTTP(w, r)
	}
}

type nopBody struct{ *strings.Reader }

func (nopBody) Close() error { return nil }

// BenchmarkCreateTrivial is the HTTP create path end to end against the
// trivial handler, one op per create.
func BenchmarkCreateTrivial(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := ServeTrivial(ln)
	defer srv.Close()
	h, err := newHTTPCreator([]string{"http://" + ln.Addr().String()}, 64, 10*time.Second, "")
	require.NoError(b, err)
	defer h.close()
	ids := newIDScheme()
	bd := newBodies(ids, false, time.Hour, "http://127.0.0.1:9/cb")
	due := time.Now().UnixNano()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			ok, reason := h.create(ctx, i, ids.id(i), bd.appendCreate(make([]byte, 0, 256), i, due))
			if !ok {
				b.Error(reason)
				return
			}
			i++
		}
	})
}
