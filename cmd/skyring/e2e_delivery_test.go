package main_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var userAgentRE = regexp.MustCompile(`^skyring/\S+$`)

// atIn is an `at` value (Unix ms) d from now.
func atIn(d time.Duration) int64 { return time.Now().Add(d).UnixMilli() }

// requireHeaders checks the headers every delivery carries.
func requireHeaders(t testing.TB, a arrival, id string) {
	t.Helper()
	require.Regexp(t, userAgentRE, a.Header.Get("User-Agent"), "User-Agent")
	require.Equal(t, id, a.Header.Get("x-skyring-timer-id"), "x-skyring-timer-id")
}

// TestDeliveryMethods delivers a timer with string data with every method,
// in any case, and checks method, body, Content-Type, headers and timing.
func TestDeliveryMethods(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	methods := []string{"post", "PUT", "Patch", "delete", "get", "options", "head", "GET", "HEAD"}
	type sent struct {
		id, path, data string
		timeout        time.Duration
		at             time.Time
	}
	var all []sent
	for i, m := range methods {
		path := s.Path("method-" + strings.ToLower(m))
		data := fmt.Sprintf("data for %s: ünïcode, \"quotes\", a=b&c=d\n", m)
		timeout := time.Duration(100+20*i) * time.Millisecond
		b := with(body(s, path), "timeout", timeout.Milliseconds(), "data", data)
		b["callback"].(map[string]any)["method"] = m
		id, at := p.createTimer(t, b)
		all = append(all, sent{id: id, path: path, data: data, timeout: timeout, at: at})
	}
	for _, x := range all {
		a := s.waitPath(t, x.path, x.timeout+deliverWait)
		m := strings.ToUpper(strings.Split(strings.TrimPrefix(x.path, "/cb/method-"), "-")[0])
		require.Equal(t, m, a.Method, "method of %s", x.path)
		require.Equal(t, x.data, string(a.Body), "%s: string data is the body verbatim", m)
		require.Equal(t, "text/plain; charset=utf-8", a.Header.Get("Content-Type"), "%s: Content-Type of string data", m)
		requireHeaders(t, a, x.id)
		requireNotEarly(t, a, x.at.Add(x.timeout), m)
	}
	s.barrier(t, p, 200)
	for _, x := range all {
		require.Equal(t, 1, s.Count(x.path), "%s delivered exactly once", x.path)
	}
	p.requireUp(t)
}

// TestDeliveryBodies checks object data (JSON), no data and null data
// (empty body), and a JSON-looking string (verbatim, text/plain).
func TestDeliveryBodies(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	obj := map[string]any{"foo": "bar", "n": 1.5, "list": []any{1, "two", nil, true}, "nested": map[string]any{"x": map[string]any{}}}
	cases := []struct {
		name, method string
		data         any // remove for none
		wantBody     string
		json         bool
	}{
		{"object post", "post", obj, `{"foo":"bar","n":1.5,"list":[1,"two",null,true],"nested":{"x":{}}}`, true},
		{"object get", "get", obj, `{"foo":"bar","n":1.5,"list":[1,"two",null,true],"nested":{"x":{}}}`, true},
		{"empty object", "put", map[string]any{}, `{}`, true},
		{"json-looking string", "post", `{"foo":"bar"}`, `{"foo":"bar"}`, false},
		{"empty string", "post", "", ``, false},
		{"no data", "post", remove, ``, false},
		{"null data", "post", nil, ``, false},
		{"no data get", "get", remove, ``, false},
	}
	type sent struct {
		path string
		id   string
		due  int64
	}
	var ss []sent
	for _, c := range cases {
		path := s.Path(strings.ReplaceAll(c.name, " ", "-"))
		b := with(body(s, path), "data", c.data)
		b["callback"].(map[string]any)["method"] = c.method
		id, at := p.createDue(t, b, 200*time.Millisecond)
		ss = append(ss, sent{path: path, id: id, due: at})
	}
	for i, c := range cases {
		a := s.waitPath(t, ss[i].path, deliverWait)
		requireHeaders(t, a, ss[i].id)
		requireNotEarlyWall(t, a, ss[i].due, c.name)
		require.Equal(t, strings.ToUpper(c.method), a.Method, c.name)
		switch {
		case c.json:
			require.JSONEq(t, c.wantBody, string(a.Body), c.name)
			require.Equal(t, "application/json", strings.TrimSpace(strings.Split(a.Header.Get("Content-Type"), ";")[0]), "%s: Content-Type", c.name)
		case c.wantBody != "":
			require.Equal(t, c.wantBody, string(a.Body), c.name)
			require.Equal(t, "text/plain; charset=utf-8", a.Header.Get("Content-Type"), "%s: Content-Type", c.name)
		default:
			require.Empty(t, a.Body, "%s: empty body", c.name)
		}
	}
}

// TestDeliveryExactlyOnceNeverEarly fires a batch of timers at chosen
// times and checks that each arrives once, not before its due time.
func TestDeliveryExactlyOnceNeverEarly(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	const n = 40
	paths := make([]string, n)
	dues := make([]int64, n)
	ids := make([]string, n)
	for i := range n {
		paths[i] = s.Path("once")
		// Due 150-540 ms after each create, several sharing a millisecond
		// (later if the machine is too slow for such a lead: createDue).
		lead := 150*time.Millisecond + time.Duration(i/2)*20*time.Millisecond
		ids[i], dues[i] = p.createDue(t, with(body(s, paths[i]), "data", fmt.Sprint(i)), lead)
	}
	// And a few by timeout, checked against the due GET reports.
	var tpaths []string
	var tinfo []timerInfo
	for i := range 5 {
		path := s.Path("once-timeout")
		id, _ := p.createTimer(t, with(body(s, path), "timeout", 300+10*i))
		tpaths = append(tpaths, path)
		tinfo = append(tinfo, p.getTimer(t, id))
	}

	s.waitFor(t, deliverWait, "the batch", func() bool {
		for _, path := range append(append([]string(nil), paths...), tpaths...) {
			if len(s.byPath[path]) == 0 {
				return false
			}
		}
		return true
	})
	s.barrier(t, p, 400) // duplicates, if any, have had their chance
	for i := range n {
		as := s.Arrivals(paths[i])
		require.Len(t, as, 1, "timer %d (%s) delivered exactly once", i, ids[i])
		require.Equal(t, fmt.Sprint(i), string(as[0].Body))
		requireNotEarlyWall(t, as[0], dues[i], fmt.Sprintf("timer %d", i))
		requireHeaders(t, as[0], ids[i])
	}
	for i, path := range tpaths {
		as := s.Arrivals(path)
		require.Len(t, as, 1, "timeout timer %d delivered exactly once", i)
		requireNotEarlyWall(t, as[0], tinfo[i].Due, fmt.Sprintf("timeout timer %d", i))
	}
	// A fired timer is gone.
	for i := range n {
		requireError(t, p.do(t, http.MethodDelete, timerPath(ids[i]), nil), http.StatusNotFound, "DELETE of a fired timer")
		requireError(t, p.do(t, http.MethodPut, timerPath(ids[i]), body(s, "/cb/never")), http.StatusNotFound, "PUT of a fired timer")
	}
	require.Zero(t, s.Count("/cb/never"))
}

// TestDeliveryCancelled: a cancelled timer never calls back.
func TestDeliveryCancelled(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	// Each is cancelled right after its create, before its due time. On a
	// machine too slow for that (the DELETE answered 404 once the timer
	// was due: it may have fired), that one does not count and the next
	// gets twice the lead.
	lead := 400 * time.Millisecond
	var paths, missed []string
	var last int64
	for len(paths) < 10 {
		path := s.Path("cancelled")
		id, at := p.createDue(t, body(s, path), lead)
		last = max(last, at)
		r := p.do(t, http.MethodDelete, timerPath(id), nil)
		if r.Status == http.StatusNotFound && time.Now().UnixMilli() >= at && lead < time.Minute {
			missed = append(missed, path)
			lead *= 2
			continue
		}
		require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
		paths = append(paths, path)
	}
	kept := s.Path("kept")
	_, at := p.createDue(t, body(s, kept), lead)
	last = max(last, at)
	s.barrier(t, p, int(max(0, time.Until(time.UnixMilli(last)).Milliseconds()))+500)
	for _, path := range paths {
		require.Zero(t, s.Count(path), "cancelled timer %s called back", path)
	}
	for _, path := range missed {
		require.LessOrEqual(t, s.Count(path), 1, "a timer cancelled too late called back more than once")
	}
	require.Equal(t, 1, s.Count(kept), "the timer not cancelled was delivered once")
}

// TestDeliveryPutRetimes: PUT replaces the data and the due time counts
// again from the PUT.
func TestDeliveryPutRetimes(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	t.Run("earlier", func(t *testing.T) {
		path := s.Path("put-earlier")
		id, _ := p.createTimer(t, with(body(s, path), "data", "old"))
		sent := time.Now()
		r := p.do(t, http.MethodPut, timerPath(id), with(body(s, path), "timeout", 200, "data", "new"))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		a := s.waitPath(t, path, deliverWait)
		require.Equal(t, "new", string(a.Body))
		requireNotEarly(t, a, sent.Add(200*time.Millisecond), "replaced timer")
		requireHeaders(t, a, id)
	})
	// The PUTs below must reach the timer before its first due time (a
	// fired timer is gone: 404). On a machine too slow for that, the
	// round does not count and runs again with twice the timeouts.
	t.Run("later", func(t *testing.T) {
		for d := 500 * time.Millisecond; ; d *= 2 {
			path := s.Path("put-later")
			id, created := p.createTimer(t, with(body(s, path), "timeout", d.Milliseconds(), "data", "old"))
			sent := time.Now()
			r := p.do(t, http.MethodPut, timerPath(id), with(body(s, path), "timeout", 2*d.Milliseconds(), "data", map[string]any{"v": "new"}))
			if r.Status == http.StatusNotFound && time.Since(created) >= d && d < time.Minute {
				continue // fired before the PUT
			}
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			info := p.getTimer(t, id)
			a := s.waitPath(t, path, 2*d+deliverWait)
			require.JSONEq(t, `{"v":"new"}`, string(a.Body), "the replaced data, not the old")
			requireNotEarly(t, a, sent.Add(2*d), "re-timed timer (timeout counts from the PUT)")
			requireNotEarlyWall(t, a, info.Due, "re-timed timer (GET due)")
			s.barrier(t, p, 300)
			require.Equal(t, 1, s.Count(path), "delivered exactly once")
			return
		}
	})
	t.Run("new callback", func(t *testing.T) {
		for d := 400 * time.Millisecond; ; d *= 2 {
			oldPath, newPath := s.Path("put-old-cb"), s.Path("put-new-cb")
			id, created := p.createTimer(t, with(body(s, oldPath), "timeout", d.Milliseconds()))
			r := p.do(t, http.MethodPut, timerPath(id), with(body(s, newPath), "timeout", 300, "data", remove))
			if r.Status == http.StatusNotFound && time.Since(created) >= d && d < time.Minute {
				continue // fired before the PUT
			}
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			a := s.waitPath(t, newPath, deliverWait)
			require.Empty(t, a.Body)
			s.barrier(t, p, int(max(0, time.Until(created.Add(d)).Milliseconds()))+100)
			require.Zero(t, s.Count(oldPath), "the old callback is gone")
			require.Equal(t, 1, s.Count(newPath))
			return
		}
	})
}

// TestDeliveryFailureKeepsNodeUp: failing callbacks (closed port, 500,
// unsupported method) do not harm the node.
func TestDeliveryFailureKeepsNodeUp(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	b := with(body(s, "/unused"), "timeout", 50)
	b["callback"].(map[string]any)["uri"] = closedPortURL(t)
	p.createTimer(t, b)
	p.createTimer(t, with(body(s, s.Path("/status/500/fail")), "timeout", 50))
	badPath := s.Path("bad-method")
	bad := with(body(s, badPath), "timeout", 50)
	bad["callback"].(map[string]any)["method"] = "fly"
	r := p.do(t, http.MethodPost, "/timer", bad)
	require.Contains(t, []int{http.StatusCreated, http.StatusBadRequest}, r.Status, "%s", r)
	s.barrier(t, p, 400)
	require.Zero(t, s.Count(badPath), "a method other than the seven is never sent")
	p.requireUp(t)
}
