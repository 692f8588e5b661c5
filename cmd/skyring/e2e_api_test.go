package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// remove, as a value given to with or cbWith, deletes the key.
type removed struct{}

var remove = removed{}

// with sets keys of a body (key, value pairs) and returns it.
func with(b map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == remove {
			delete(b, k)
		} else {
			b[k] = kv[i+1]
		}
	}
	return b
}

// cbWith is a valid http callback to the sink with keys set or removed.
func cbWith(s *sink, kv ...any) map[string]any {
	cb := map[string]any{"transport": "http", "method": "post", "uri": s.URL("/cb/never")}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == remove {
			delete(cb, k)
		} else {
			cb[k] = kv[i+1]
		}
	}
	return cb
}

// TestAPICreate covers POST /timer: 201, Location, a server-chosen UUID,
// empty body, and every accepted form of the fields.
func TestAPICreate(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)
	p.requireUp(t)

	t.Run("201 Location uuid", func(t *testing.T) {
		r := p.do(t, http.MethodPost, "/timer", body(s, "/cb/never"))
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
		require.Empty(t, r.Body)
		id := locationID(t, r)
		require.Regexp(t, uuidRE, id, "server-chosen id")
		require.Equal(t, "/timer/"+id, r.Header.Get("Location"))
		info := p.getTimer(t, id)
		require.Equal(t, id, info.ID)
	})

	accepted := []struct {
		name    string
		b       map[string]any
		timeout int64 // expected GET timeout, 0 = don't check
		data    string
	}{
		{"timeout string", with(body(s, "/cb/never"), "timeout", "600000"), 600000, `"hello"`},
		{"timeout string exponent", with(body(s, "/cb/never"), "timeout", "6e5"), 600000, `"hello"`},
		{"timeout max 2^31-1", with(body(s, "/cb/never"), "timeout", 2147483647), 2147483647, `"hello"`},
		{"timeout fraction cut", with(body(s, "/cb/never"), "timeout", 1500000.9), 1500000, `"hello"`},
		{"timeout float exponent", with(body(s, "/cb/never"), "timeout", 6e5), 600000, `"hello"`},
		{"data absent", with(body(s, "/cb/never"), "data", remove), 0, `null`},
		{"data null", with(body(s, "/cb/never"), "data", nil), 0, `null`},
		{"data empty string", with(body(s, "/cb/never"), "data", ""), 0, `""`},
		{"data object", with(body(s, "/cb/never"), "data", map[string]any{"a": 1, "b": []any{true, nil}}), 0, `{"a":1,"b":[true,null]}`},
		{"data empty object", with(body(s, "/cb/never"), "data", map[string]any{}), 0, `{}`},
		{"data json-looking string", with(body(s, "/cb/never"), "data", `{"foo":"bar"}`), 0, `"{\"foo\":\"bar\"}"`},
		{"extra fields ignored", with(body(s, "/cb/never"), "zzz", 1, "created", 1), longTimeout, `"hello"`},
		{"method upper case", with(body(s, "/cb/never"), "callback", cbWith(s, "method", "PUT")), 0, `"hello"`},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			id, _ := p.createTimer(t, c.b)
			info := p.getTimer(t, id)
			if c.timeout != 0 {
				require.Equal(t, c.timeout, info.Timeout, "GET timeout")
				require.Equal(t, c.timeout, info.Due-info.Created, "due-created")
			}
			require.JSONEq(t, c.data, string(info.Data), "GET data")
			p.requireUp(t)
		})
	}

	t.Run("at RFC 3339", func(t *testing.T) {
		at := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
		for _, layout := range []string{time.RFC3339Nano, time.RFC3339} {
			at := at
			if layout == time.RFC3339 {
				at = at.Truncate(time.Second)
			}
			for _, loc := range []*time.Location{time.UTC, time.FixedZone("x", 2*3600+1800)} {
				b := with(body(s, "/cb/never"), "timeout", remove, "at", at.In(loc).Format(layout))
				id, _ := p.createTimer(t, b)
				info := p.getTimer(t, id)
				require.Equal(t, at.UnixMilli(), info.Due, "due of at=%v", b["at"])
			}
		}
	})
	t.Run("at Unix ms", func(t *testing.T) {
		at := time.Now().Add(10 * time.Minute).UnixMilli()
		for _, v := range []any{at, strconv.FormatInt(at, 10)} {
			id, _ := p.createTimer(t, with(body(s, "/cb/never"), "timeout", remove, "at", v))
			require.Equal(t, at, p.getTimer(t, id).Due, "due of at=%v", v)
		}
	})
	t.Run("x-timer-id", func(t *testing.T) {
		for _, id := range []string{
			strings.Repeat("a", 255) + "Z",
			"k",
			`a%b?c#d&e=f+g:h~!`,
			"literal-percent-%C3%BC",
		} {
			r := p.do(t, http.MethodPost, "/timer", body(s, "/cb/never"), "x-timer-id", id)
			require.Equal(t, http.StatusCreated, r.Status, "id %q: %s", id, r)
			loc := r.Header.Get("Location")
			require.Contains(t, []string{"/timer/" + id, timerPath(id)}, loc, "Location of id %q, as is or escaped", id)
			require.Equal(t, id, p.getTimer(t, id).ID)
		}
		require.Len(t, strings.Repeat("a", 255)+"Z", 256)
	})
	t.Run("body with other content type", func(t *testing.T) {
		b, _ := json.Marshal(body(s, "/cb/never"))
		r := p.do(t, http.MethodPost, "/timer", string(b), "Content-Type", "text/plain")
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	})
	t.Run("body just under 1 MiB", func(t *testing.T) {
		b := with(body(s, "/cb/never"), "data", strings.Repeat("x", 1<<20-1024))
		id, _ := p.createTimer(t, b)
		var got string
		require.NoError(t, json.Unmarshal(p.getTimer(t, id).Data, &got))
		require.Len(t, got, 1<<20-1024)
	})
}

// TestAPIValidation sends every invalid create and checks 400, a reason,
// the Location header of a rejected POST, and that the node stays up.
func TestAPIValidation(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	type tc struct {
		name     string
		b        any // map, or a raw string
		hdr      []string
		location bool // a 400 on a parsed body still carries Location
	}
	var cases []tc
	add := func(name string, b any, location bool, hdr ...string) {
		cases = append(cases, tc{name: name, b: b, hdr: hdr, location: location})
	}
	for _, v := range []any{0, -1, 2147483648, 1e10, 0.5, "abc", "", " 1000", "1000 ", "0x10", "NaN", "Infinity", "-5", true, false, []any{}, []any{1000}, map[string]any{}, nil} {
		add(fmt.Sprintf("timeout %#v", v), with(body(s, "/cb/never"), "timeout", v), true)
	}
	add("timeout missing", with(body(s, "/cb/never"), "timeout", remove), true)
	for _, v := range []any{1, 1.5, 0, []any{}, []any{"a"}, true, false} {
		add(fmt.Sprintf("data %#v", v), with(body(s, "/cb/never"), "data", v), true)
	}
	add("callback missing", with(body(s, "/cb/never"), "callback", remove), true)
	for _, v := range []any{nil, "http", []any{}, 1, true} {
		add(fmt.Sprintf("callback %#v", v), with(body(s, "/cb/never"), "callback", v), true)
	}
	add("callback empty object", with(body(s, "/cb/never"), "callback", map[string]any{}), true)
	for _, f := range []string{"transport", "method", "uri"} {
		add("callback."+f+" missing", with(body(s, "/cb/never"), "callback", cbWith(s, f, remove)), true)
		add("callback."+f+" number", with(body(s, "/cb/never"), "callback", cbWith(s, f, 1)), true)
		add("callback."+f+" null", with(body(s, "/cb/never"), "callback", cbWith(s, f, nil)), true)
		add("callback."+f+" object", with(body(s, "/cb/never"), "callback", cbWith(s, f, map[string]any{})), true)
	}
	add("unknown transport", with(body(s, "/cb/never"), "callback", cbWith(s, "transport", "carrier-pigeon")), true)
	add("empty transport", with(body(s, "/cb/never"), "callback", cbWith(s, "transport", "")), true)

	future := time.Now().Add(10 * time.Minute)
	add("at and timeout", with(body(s, "/cb/never"), "at", future.UnixMilli()), true)
	add("at past RFC 3339", with(body(s, "/cb/never"), "timeout", remove, "at", time.Now().Add(-time.Minute).Format(time.RFC3339Nano)), true)
	add("at past Unix ms", with(body(s, "/cb/never"), "timeout", remove, "at", time.Now().Add(-time.Minute).UnixMilli()), true)
	add("at beyond max", with(body(s, "/cb/never"), "timeout", remove, "at", time.Now().Add(time.Duration(1<<31)*time.Millisecond+time.Hour).UnixMilli()), true)
	add("at word", with(body(s, "/cb/never"), "timeout", remove, "at", "tomorrow"), true)
	add("at bool", with(body(s, "/cb/never"), "timeout", remove, "at", true), true)
	add("at null", with(body(s, "/cb/never"), "timeout", remove, "at", nil), true)

	add("invalid JSON", `{"timeout": 1000, "callback": `, false)
	add("invalid JSON unquoted keys", `{timeout: 1000}`, false)
	add("trailing garbage", `{"timeout": 1000} x`, false)
	add("empty body", "", false)
	for _, raw := range []string{`[]`, `"str"`, `42`, `null`, `true`} {
		add("body "+raw, raw, false)
	}

	add("id 257 bytes", body(s, "/cb/never"), false, "x-timer-id", strings.Repeat("b", 257))
	add("id with space", body(s, "/cb/never"), false, "x-timer-id", "has space")
	add("id with slash", body(s, "/cb/never"), false, "x-timer-id", "a/b")

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := p.do(t, http.MethodPost, "/timer", c.b, c.hdr...)
			requireError(t, r, http.StatusBadRequest, c.name)
			if c.location {
				loc := r.Header.Get("Location")
				require.True(t, strings.HasPrefix(loc, "/timer/") && len(loc) > len("/timer/"),
					"a rejected POST carries Location /timer/<id>, got %q", loc)
			}
			p.requireUp(t)
		})
	}
	// Nothing of the above was stored or fires.
	require.Empty(t, s.All(), "callbacks from rejected timers")
}

// TestAPITimerLifecycle covers PUT, DELETE, GET of a timer, the 404s of
// unknown ids and routes, 409, 413, each with a reason.
func TestAPITimerLifecycle(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	t.Run("404 route", func(t *testing.T) {
		for _, req := range [][2]string{
			{http.MethodGet, "/nope"},
			{http.MethodPost, "/timers"},
			{http.MethodPost, "/"}, // GET / redirects to the dashboard
			{http.MethodPatch, "/timer/abc"},
			{http.MethodPost, "/timer/abc/def"},
		} {
			r := p.do(t, req[0], req[1], nil)
			requireError(t, r, http.StatusNotFound, req[0]+" "+req[1])
			require.Equal(t, "Not Found", r.Reason(), "%s %s", req[0], req[1])
			require.JSONEq(t, `{"message":"Not Found"}`, string(r.Body), "%s %s", req[0], req[1])
			p.requireUp(t)
		}
	})

	t.Run("unknown id 404", func(t *testing.T) {
		for _, id := range []string{"no-such-timer", "3f2c6b0e-0000-4000-8000-000000000000"} {
			requireError(t, p.do(t, http.MethodGet, timerPath(id), nil), http.StatusNotFound, "GET unknown")
			requireError(t, p.do(t, http.MethodPut, timerPath(id), body(s, "/cb/never")), http.StatusNotFound, "PUT unknown")
			requireError(t, p.do(t, http.MethodDelete, timerPath(id), nil), http.StatusNotFound, "DELETE unknown")
			p.requireUp(t)
		}
	})

	t.Run("DELETE 202 then 404", func(t *testing.T) {
		id, _ := p.createTimer(t, body(s, "/cb/never"))
		r := p.do(t, http.MethodDelete, timerPath(id), nil)
		require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
		require.Empty(t, r.Body)
		requireError(t, p.do(t, http.MethodDelete, timerPath(id), nil), http.StatusNotFound, "second DELETE")
		p.requireState(t, id, "cancelled", "GET after DELETE (its fate, during the retention period)")
		requireError(t, p.do(t, http.MethodPut, timerPath(id), body(s, "/cb/never")), http.StatusNotFound, "PUT after DELETE")
		p.requireUp(t)
	})

	t.Run("PUT replaces", func(t *testing.T) {
		id, _ := p.createTimer(t, body(s, "/cb/never"))
		before := p.getTimer(t, id)
		nb := with(body(s, "/cb/other"), "timeout", 900000, "data", map[string]any{"v": 2})
		nb["callback"].(map[string]any)["method"] = "patch"
		sent := time.Now()
		r := p.do(t, http.MethodPut, timerPath(id), nb)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		require.Empty(t, r.Body)
		after := p.getTimer(t, id)
		require.Equal(t, id, after.ID)
		require.JSONEq(t, `{"v":2}`, string(after.Data))
		require.Equal(t, "patch", strings.ToLower(after.Callback.Method))
		require.Equal(t, s.URL("/cb/other"), after.Callback.URI)
		require.Equal(t, int64(900000), after.Timeout)
		require.GreaterOrEqual(t, after.Created, sent.UnixMilli(), "created becomes now")
		require.GreaterOrEqual(t, after.Created, before.Created)
		require.Equal(t, after.Created+900000, after.Due)
		p.requireUp(t)
	})

	t.Run("PUT with at", func(t *testing.T) {
		id, _ := p.createTimer(t, body(s, "/cb/never"))
		at := time.Now().Add(20 * time.Minute).UnixMilli()
		r := p.do(t, http.MethodPut, timerPath(id), with(body(s, "/cb/never"), "timeout", remove, "at", at))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		require.Equal(t, at, p.getTimer(t, id).Due)
	})

	t.Run("PUT invalid 400 keeps timer", func(t *testing.T) {
		id, _ := p.createTimer(t, with(body(s, "/cb/never"), "data", "keep"))
		for _, b := range []any{
			with(body(s, "/cb/never"), "timeout", 0),
			with(body(s, "/cb/never"), "data", 5),
			with(body(s, "/cb/never"), "callback", remove),
			`{"timeout":`,
		} {
			requireError(t, p.do(t, http.MethodPut, timerPath(id), b), http.StatusBadRequest, fmt.Sprintf("PUT %v", b))
		}
		require.JSONEq(t, `"keep"`, string(p.getTimer(t, id).Data))
		p.requireUp(t)
	})

	t.Run("409 duplicate id", func(t *testing.T) {
		id := "dup-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		p.createTimer(t, body(s, "/cb/never"), "x-timer-id", id)
		r := p.do(t, http.MethodPost, "/timer", with(body(s, "/cb/never"), "data", "second"), "x-timer-id", id)
		requireError(t, r, http.StatusConflict, "duplicate id")
		require.JSONEq(t, `"hello"`, string(p.getTimer(t, id).Data), "the first timer stays")
		p.requireUp(t)
	})

	t.Run("413 body over 1 MiB", func(t *testing.T) {
		b := with(body(s, "/cb/never"), "data", strings.Repeat("x", 1<<20+1))
		r := p.do(t, http.MethodPost, "/timer", b)
		requireError(t, r, http.StatusRequestEntityTooLarge, "POST 1 MiB+")
		id, _ := p.createTimer(t, body(s, "/cb/never"))
		r = p.do(t, http.MethodPut, timerPath(id), b)
		requireError(t, r, http.StatusRequestEntityTooLarge, "PUT 1 MiB+")
		p.requireUp(t)
	})

	t.Run("ping", func(t *testing.T) {
		p.requireUp(t)
	})
	require.Empty(t, s.All(), "no timer here was due")
}

// TestAPIGetTimer checks the JSON shape and values of GET /timer/:id.
func TestAPIGetTimer(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)

	b := with(body(s, "/cb/get"), "timeout", 123456, "data", map[string]any{"k": "v", "n": 1})
	sent := time.Now()
	id, _ := p.createTimer(t, b)
	recvd := time.Now()

	r := p.do(t, http.MethodGet, timerPath(id), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.Body, &raw), "%s", r.Body)
	for _, k := range []string{"id", "timeout", "data", "callback", "created", "due", "node"} {
		require.Contains(t, raw, k, "GET body %s", r.Body)
	}
	info := p.getTimer(t, id)
	require.Equal(t, id, info.ID)
	require.Equal(t, int64(123456), info.Timeout)
	require.JSONEq(t, `{"k":"v","n":1}`, string(info.Data))
	require.Equal(t, "http", info.Callback.Transport)
	require.Equal(t, "post", info.Callback.Method)
	require.Equal(t, s.URL("/cb/get"), info.Callback.URI)
	require.GreaterOrEqual(t, info.Created, sent.UnixMilli())
	require.LessOrEqual(t, info.Created, recvd.UnixMilli())
	require.Equal(t, info.Created+123456, info.Due)
	require.NotEmpty(t, info.Node)
	if p.Node != "" {
		require.Equal(t, p.Node, info.Node, "node is the ready line's node")
	}

	// No data: "data": null.
	id2, _ := p.createTimer(t, with(body(s, "/cb/get"), "data", remove))
	r = p.do(t, http.MethodGet, timerPath(id2), nil)
	require.NoError(t, json.Unmarshal(r.Body, &raw))
	require.Equal(t, "null", string(raw["data"]), "no data is null: %s", r.Body)

	// String data comes back as the string.
	id3, _ := p.createTimer(t, with(body(s, "/cb/get"), "data", "a \"quoted\" line\n"))
	var str string
	require.NoError(t, json.Unmarshal(p.getTimer(t, id3).Data, &str))
	require.Equal(t, "a \"quoted\" line\n", str)
}

// TestAPITimerMax raises the timeout bound with --timer:max.
func TestAPITimerMax(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t, "--timer:max", "3000000000")
	id, _ := p.createTimer(t, with(body(s, "/cb/never"), "timeout", 2147483648))
	require.Equal(t, int64(2147483648), p.getTimer(t, id).Timeout)
	id, _ = p.createTimer(t, with(body(s, "/cb/never"), "timeout", 3000000000))
	require.Equal(t, int64(3000000000), p.getTimer(t, id).Timeout)
	requireError(t, p.do(t, http.MethodPost, "/timer", with(body(s, "/cb/never"), "timeout", 3000000001)), http.StatusBadRequest, "over --timer:max")
	at := time.Now().Add(2500000 * time.Second).UnixMilli()
	_, _ = p.createTimer(t, with(body(s, "/cb/never"), "timeout", remove, "at", at))
}
