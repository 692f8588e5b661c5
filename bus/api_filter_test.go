package bus_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
)

// A list message carries the filters as members (due bounds as numbers,
// numeric strings or RFC 3339 times); bad ones are a 400.
func TestAPIListFilters(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("listfilter"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())
	list, create := b.Subject("timer", "list"), b.Subject("timer", "create")
	for _, id := range []string{"a-1", "a-2", "b-1"} {
		require.JSONEq(t, `{"id":"`+id+`","status":201}`, request(t, nc, create, `{"id":"`+id+`","timeout":1000,`+cb+`}`))
	}
	require.Equal(t, []string{"a-1", "a-2"}, replyIDs(requestList(t, nc, list, `{"prefix":"a-"}`)))
	require.Equal(t, []string{"b-1"}, replyIDs(requestList(t, nc, list, `{"prefix":"b","host":"127.0.0.1:9"}`)))
	require.Empty(t, replyIDs(requestList(t, nc, list, `{"host":"example.com"}`)))
	requestList(t, nc, list, `{"due_after":1000,"due_before":"2030-01-01T00:00:00Z","prefix":"x","host":"h","state":"failed"}`)
	qs := h.listQueries()
	require.Equal(t, skyring.ListQuery{State: "failed", DueAfter: 1000, DueBefore: 1893456000000, Prefix: "x", Host: "h",
		Limit: skyring.DefaultListLimit}, qs[len(qs)-1])
	requestList(t, nc, list, `{"due_after":"1000"}`)
	qs = h.listQueries()
	require.Equal(t, int64(1000), qs[len(qs)-1].DueAfter)

	for _, body := range []string{`{"due_after":"soon"}`, `{"due_before":-1}`, `{"due_after":1.5}`, `{"prefix":5}`, `{"host":"a/b"}`,
		`{"due_after":2000,"due_before":1000}`} {
		require.Contains(t, request(t, nc, list, body), `"status":400`, body)
	}
}

// <prefix>.timer.cancel_many cancels what its filters match and answers
// the count; without a filter it needs "all":true.
func TestAPICancelMany(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("cancelmany"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())
	cancelMany, create := b.Subject("timer", "cancel_many"), b.Subject("timer", "create")
	require.Equal(t, "skyring.timer.cancel_many", cancelMany)
	for i := range 5 {
		id := fmt.Sprintf("c-%d", i)
		if i == 4 {
			id = "d-0"
		}
		require.JSONEq(t, `{"id":"`+id+`","status":201}`, request(t, nc, create, `{"id":"`+id+`","timeout":1000,`+cb+`}`))
	}
	for _, body := range []string{``, `{}`, `{"all":false}`, `{"all":"no"}`, `{"state":"delivered"}`, `{"prefix":""}`, `[1]`} {
		require.Contains(t, request(t, nc, cancelMany, body), `"status":400`, body)
	}
	require.JSONEq(t, `{"status":200,"cancelled":4}`, request(t, nc, cancelMany, `{"prefix":"c-"}`))
	require.JSONEq(t, `{"status":200,"cancelled":0}`, request(t, nc, cancelMany, `{"prefix":"c-"}`))
	require.JSONEq(t, `{"status":200,"cancelled":1}`, request(t, nc, cancelMany, `{"all":true}`))
}
