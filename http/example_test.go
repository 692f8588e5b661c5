package http_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/skyring/skyring"
	skyhttp "github.com/skyring/skyring/http"
)

// printService prints the timers it is given; a real node stores and arms
// them.
type printService struct{}

func (printService) Create(_ context.Context, t *skyring.Timer) error {
	fmt.Printf("create %s: %s %s %s in %d ms\n", t.ID, t.Callback.Transport,
		t.Callback.Method, t.Callback.URI, (t.Due-t.Created)/1e6)
	return nil
}
func (printService) Update(context.Context, *skyring.Timer) error { return skyring.ErrTimerNotFound }
func (printService) Cancel(context.Context, string) error         { return skyring.ErrTimerNotFound }
func (printService) Get(context.Context, string) (skyring.Info, error) {
	return skyring.Info{}, skyring.ErrTimerNotFound
}
func (printService) List(context.Context, skyring.ListQuery) (skyring.ListPage, error) {
	return skyring.ListPage{}, nil
}
func (printService) Retry(context.Context, string) error                         { return skyring.ErrTimerNotFound }
func (printService) CancelMatching(context.Context, skyring.Filter) (int, error) { return 0, nil }

func ExampleNewHandler() {
	h := skyhttp.NewHandler(printService{}, skyhttp.Options{})

	post := func(id, body string) {
		req := httptest.NewRequest(http.MethodPost, "/timer", strings.NewReader(body))
		req.Header.Set("x-timer-id", id)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("Location"))
		if reason := rec.Header().Get("x-skyring-reason"); reason != "" {
			fmt.Println("reason:", reason)
		}
	}
	post("reminder-1", `{"timeout":"1e3","data":"hi","callback":{"transport":"http","method":"post","uri":"http://example.com/hook"}}`)
	post("reminder-2", `{"timeout":0,"callback":{"transport":"http","method":"post","uri":"http://example.com/hook"}}`)

	// Output:
	// create reminder-1: http post http://example.com/hook in 1000 ms
	// 201 /timer/reminder-1
	// 400 /timer/reminder-2
	// reason: timeout must be between 1 and 2147483647 milliseconds
}
