package httptransport_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports/httptransport"
)

func Example() {
	// A webhook receiver.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("%s %s %s\n", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		fmt.Printf("timer %s from %s: %s\n", r.Header.Get("x-skyring-timer-id"), r.Header.Get("User-Agent"), body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	tr := httptransport.New(httptransport.Options{Version: "1.0.0"})
	defer tr.Shutdown(context.Background())

	timer := &skyring.Timer{
		ID:       "reminder-42",
		Data:     []byte(`{"user":42}`),
		Callback: skyring.Callback{Transport: "http", Method: "POST", URI: srv.URL + "/hooks/remind"},
	}
	fmt.Println("delivered:", tr.Execute(context.Background(), timer))

	timer.Callback.URI = srv.URL + "/gone"
	timer.Callback.Method = "trace"
	fmt.Println(tr.Execute(context.Background(), timer))
	// Output:
	// POST /hooks/remind application/json
	// timer reminder-42 from skyring/1.0.0: {"user":42}
	// delivered: <nil>
	// httptransport: unsupported method "trace" (want one of post, put, patch, delete, get, options, head)
}
