package httptransport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports/httptransport"
)

// BenchmarkHTTPDeliverParallel measures deliveries per second through one
// Transport to a local keep-alive server answering 204, with GOMAXPROCS
// goroutines delivering at once (go test -bench HTTPDeliver -cpu 1,2,8).
func BenchmarkHTTPDeliverParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		data string
	}{
		{"string", `"hello, timer"`},
		{"object", `{"user":42,"action":"remind"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			tr := httptransport.New(httptransport.Options{})
			defer func() { _ = tr.Shutdown(context.Background()) }()
			tm := &skyring.Timer{
				ID:       "bench",
				Data:     []byte(bc.data),
				Callback: skyring.Callback{Transport: "http", Method: "post", URI: srv.URL + "/hook"},
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tr.Execute(ctx, tm); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
