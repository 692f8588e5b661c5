package skyring_test

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

// now is the fixed acceptance time of most ParseTimer tests: a whole
// millisecond, so that Unix-ms `at` values line up exactly.
var (
	now   = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	nowMs = now.UnixMilli()
)

const (
	cbJSON   = `"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1/hook"}`
	maxMs    = skyring.DefaultMaxTimeout
	msInNano = int64(time.Millisecond)
)

var wantCallback = skyring.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1/hook"}

// withCB returns a body made of fields (a comma-separated list of JSON
// members, possibly empty) plus a valid callback.
func withCB(fields string) []byte {
	if fields == "" {
		return []byte("{" + cbJSON + "}")
	}
	return []byte("{" + fields + "," + cbJSON + "}")
}

func params() skyring.ParseParams { return skyring.ParseParams{Now: now, ID: "t1"} }

func TestParseTimerTimeout(t *testing.T) {
	t.Parallel()
	ok := []struct {
		raw  string
		want int64 // ms
	}{
		{`1000`, 1000},
		{`"1000"`, 1000},
		{`1e3`, 1000},
		{`"1e3"`, 1000},
		{`1E3`, 1000},
		{`1e+3`, 1000},
		{`10.5e1`, 105},
		{`"0.001e3"`, 1},
		{`1.9`, 1},
		{`"1.9"`, 1},
		{`1.0`, 1},
		{`1`, 1},
		{`"1"`, 1},
		{`2147483647`, maxMs},
		{`"2147483647"`, maxMs},
		{`2147483647.9`, maxMs},
		{`"\u0031000"`, 1000}, // the string's content is "1000"
	}
	for _, tc := range ok {
		tm, err := skyring.ParseTimer(withCB(`"timeout":`+tc.raw), params())
		require.NoError(t, err, "timeout %s", tc.raw)
		require.Equal(t, now.UnixNano(), tm.Created, "timeout %s", tc.raw)
		require.Equal(t, now.UnixNano()+tc.want*msInNano, tm.Due, "timeout %s", tc.raw)
		require.Equal(t, tc.want, tm.Info("n").Timeout, "timeout %s", tc.raw)
		require.True(t, tm.Relative, "a timeout is relative: timeout %s", tc.raw)
	}

	bad := []string{
		`" 1000"`, `"1000 "`, `"+1"`, `"0x10"`, `""`, `"abc"`, `"01"`, `".5"`, `"1."`, `"1e"`,
		`"NaN"`, `"Infinity"`, `"-Infinity"`, `"1_000"`, `"1,000"`, `"1000ms"`,
		`true`, `false`, `[]`, `[1000]`, `{}`, `{"ms":1000}`, `null`,
		`0`, `-1`, `0.5`, `0.999`, `"0.5"`, `-0`, `"-0"`, `-0.5`, `-2147483648`,
		`2147483648`, `"2147483648"`, `2147483648.1`, `1e10`, `1e400`, `"1e400"`, `-1e400`,
	}
	for _, raw := range bad {
		_, err := skyring.ParseTimer(withCB(`"timeout":`+raw), params())
		requireInvalid(t, err, "timeout", "timeout", "timeout %s", raw)
	}

	// The bound is reported in the reason.
	_, err := skyring.ParseTimer(withCB(`"timeout":2147483648`), params())
	requireInvalid(t, err, "timeout", "2147483647")

	// A number that is not valid JSON makes the whole body invalid JSON.
	for _, raw := range []string{`01`, `+1`, `0x10`, `.5`, `NaN`, `abc`} {
		_, err := skyring.ParseTimer(withCB(`"timeout":`+raw), params())
		requireInvalid(t, err, "", "Invalid JSON", "timeout %s", raw)
	}

	// Absent.
	_, err = skyring.ParseTimer(withCB(`"data":"x"`), params())
	requireInvalid(t, err, "timeout", "required")
}

func TestParseTimerMaxTimeout(t *testing.T) {
	t.Parallel()
	parse := func(timeout string, max int64) (*skyring.Timer, error) {
		p := params()
		p.MaxTimeout = max
		return skyring.ParseTimer(withCB(`"timeout":`+timeout), p)
	}

	// Zero and negative mean the default.
	for _, max := range []int64{0, -1, math.MinInt64} {
		_, err := parse("2147483647", max)
		require.NoError(t, err, "max %d", max)
		_, err = parse("2147483648", max)
		requireInvalid(t, err, "timeout", "2147483647", "max %d", max)
	}

	// Lowered.
	_, err := parse("1000", 1000)
	require.NoError(t, err)
	_, err = parse("1001", 1000)
	requireInvalid(t, err, "timeout", "1000")

	// Raised.
	const raised = int64(10 * 365 * 24 * 3600 * 1000)
	tm, err := parse(strconv.FormatInt(raised, 10), raised)
	require.NoError(t, err)
	require.Equal(t, now.UnixNano()+raised*msInNano, tm.Due)
	_, err = parse(strconv.FormatInt(raised+1, 10), raised)
	requireInvalid(t, err, "timeout", strconv.FormatInt(raised, 10))

	// Clamped at MaxTimeoutLimit, however high the operator asks.
	for _, max := range []int64{skyring.MaxTimeoutLimit, skyring.MaxTimeoutLimit + 1, math.MaxInt64} {
		tm, err := parse(strconv.FormatInt(skyring.MaxTimeoutLimit, 10), max)
		require.NoError(t, err, "max %d", max)
		require.Equal(t, now.UnixNano()+skyring.MaxTimeoutLimit*msInNano, tm.Due, "no overflow")
		require.Greater(t, tm.Due, tm.Created)
		_, err = parse(strconv.FormatInt(skyring.MaxTimeoutLimit+1, 10), max)
		requireInvalid(t, err, "timeout", strconv.FormatInt(skyring.MaxTimeoutLimit, 10), "max %d", max)
	}
}

func TestParseTimerAt(t *testing.T) {
	t.Parallel()
	rfc := func(d time.Duration) string { return strconv.Quote(now.Add(d).Format(time.RFC3339Nano)) }
	ms := func(d time.Duration) string { return strconv.FormatInt(nowMs+d.Milliseconds(), 10) }
	max := time.Duration(maxMs) * time.Millisecond

	ok := []struct {
		name string
		raw  string
		want time.Duration // due minus now
	}{
		{"rfc3339", rfc(time.Second), time.Second},
		{"rfc3339 fraction", `"2024-03-01T12:00:00.123456789Z"`, 123456789},
		{"rfc3339 short fraction", `"2024-03-01T12:00:01.5Z"`, 1500 * time.Millisecond},
		{"rfc3339 positive offset", `"2024-03-01T13:00:01+01:00"`, time.Second},
		{"rfc3339 negative offset", `"2024-03-01T06:30:01.25-05:30"`, 1250 * time.Millisecond},
		{"rfc3339 one ns ahead", `"2024-03-01T12:00:00.000000001Z"`, 1},
		{"rfc3339 at the bound", rfc(max), max},
		{"unix ms number", ms(time.Second), time.Second},
		{"unix ms string", strconv.Quote(ms(time.Minute)), time.Minute},
		{"unix ms fraction cut", ms(time.Second) + ".9", time.Second},
		{"unix ms exponent", `1.709294401e12`, time.Second},
		{"unix ms exponent string", `"1.709294401e12"`, time.Second},
		{"unix ms one ms ahead", ms(time.Millisecond), time.Millisecond},
		{"unix ms at the bound", ms(max), max},
	}
	for _, tc := range ok {
		tm, err := skyring.ParseTimer(withCB(`"at":`+tc.raw), params())
		require.NoError(t, err, tc.name)
		require.Equal(t, now.UnixNano(), tm.Created, tc.name)
		require.Equal(t, now.UnixNano()+int64(tc.want), tm.Due, tc.name)
		require.False(t, tm.Relative, "at is absolute: %s", tc.name)
	}

	bad := []struct {
		name, raw, reason string
	}{
		{"rfc3339 now", rfc(0), "future"},
		{"rfc3339 past", rfc(-time.Second), "future"},
		{"rfc3339 one ns past", `"2024-03-01T11:59:59.999999999Z"`, "future"},
		{"rfc3339 beyond max", rfc(max + time.Millisecond), "within 2147483647 ms"},
		{"rfc3339 one ns beyond max", rfc(max + 1), "within"},
		{"rfc3339 year 2100", `"2100-01-01T00:00:00Z"`, "within"},
		{"rfc3339 beyond 2262", `"2262-04-12T00:00:00Z"`, "range"},
		{"rfc3339 year 9999", `"9999-12-31T23:59:59Z"`, "range"},
		{"rfc3339 before 1970", `"1969-12-31T23:59:59Z"`, ""},
		{"unix ms now", ms(0), "future"},
		{"unix ms past", ms(-time.Second), "future"},
		{"unix ms zero", `0`, "future"},
		{"unix ms negative", `-1`, ""},
		{"unix ms beyond max", ms(max + time.Millisecond), "within"},
		{"unix ms beyond 2262", `9300000000000000`, "range"},
		{"unix ms huge", `1e300`, "range"},
		{"unix ms inf", `1e400`, ""},
		{"unix ms string with space", strconv.Quote(" " + ms(time.Second)), ""},
		{"no zone", `"2024-03-01T12:00:01"`, ""},
		{"date only", `"2024-03-02"`, ""},
		{"space separator", `"2024-03-01 12:00:01Z"`, ""},
		{"word", `"tomorrow"`, ""},
		{"empty string", `""`, ""},
		{"bool", `true`, ""},
		{"array", `[]`, ""},
		{"object", `{}`, ""},
	}
	for _, tc := range bad {
		_, err := skyring.ParseTimer(withCB(`"at":`+tc.raw), params())
		requireInvalid(t, err, "at", tc.reason, tc.name)
	}

	// A raised bound applies to at as well.
	p := params()
	p.MaxTimeout = int64(365 * 24 * time.Hour / time.Millisecond)
	tm, err := skyring.ParseTimer(withCB(`"at":`+rfc(300*24*time.Hour)), p)
	require.NoError(t, err)
	require.Equal(t, now.Add(300*24*time.Hour).UnixNano(), tm.Due)
	_, err = skyring.ParseTimer(withCB(`"at":`+rfc(366*24*time.Hour)), p)
	requireInvalid(t, err, "at", "within")
	require.ErrorContains(t, err, "--timer:max", "the reason says how to allow it")

	// Beyond 2262 stays out of range even with the highest bound.
	p.MaxTimeout = math.MaxInt64
	_, err = skyring.ParseTimer(withCB(`"at":"2262-04-12T00:00:00Z"`), p)
	requireInvalid(t, err, "at", "")
}

func TestParseTimerTimeoutAndAt(t *testing.T) {
	t.Parallel()
	at := strconv.FormatInt(nowMs+5000, 10)

	_, err := skyring.ParseTimer(withCB(`"timeout":1000,"at":`+at), params())
	requireInvalid(t, err, "at", "either")
	_, err = skyring.ParseTimer(withCB(`"at":`+at+`,"timeout":"abc"`), params())
	requireInvalid(t, err, "at", "either")

	// "at": null is absent.
	tm, err := skyring.ParseTimer(withCB(`"timeout":1000,"at":null`), params())
	require.NoError(t, err)
	require.Equal(t, now.UnixNano()+1000*msInNano, tm.Due)
	require.True(t, tm.Relative)
	_, err = skyring.ParseTimer(withCB(`"at":null`), params())
	requireInvalid(t, err, "timeout", "required")

	// "timeout": null beside an at is treated as absent too.
	tm, err = skyring.ParseTimer(withCB(`"timeout":null,"at":`+at), params())
	require.NoError(t, err)
	require.Equal(t, now.UnixNano()+5000*msInNano, tm.Due)
	require.False(t, tm.Relative)

	// Both null: no due time at all.
	_, err = skyring.ParseTimer(withCB(`"timeout":null,"at":null`), params())
	requireInvalid(t, err, "timeout", "")
}

// TestParseTimerAtSubMillisecond pins down what `at` allows: strictly in the
// future, to the nanosecond. Such a timer is due in less than a millisecond,
// so its public timeout (due minus created, in whole ms) reads 0.
func TestParseTimerAtSubMillisecond(t *testing.T) {
	t.Parallel()
	p := params()
	p.Now = now.Add(500 * time.Microsecond)
	tm, err := skyring.ParseTimer(withCB(`"at":`+strconv.FormatInt(nowMs+1, 10)), p)
	require.NoError(t, err)
	require.Equal(t, int64(500*time.Microsecond), tm.Due-tm.Created)
	require.Equal(t, int64(0), tm.Info("n").Timeout)
}

func TestParseTimerTimes(t *testing.T) {
	t.Parallel()
	// Now with a sub-millisecond part: Created is exactly Now, Due exactly
	// Now plus the timeout, in nanoseconds.
	for _, n := range []time.Time{
		time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC),
		time.Date(2031, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -7*3600)),
		time.Unix(0, 1),
	} {
		tm, err := skyring.ParseTimer(withCB(`"timeout":1500.75`), skyring.ParseParams{Now: n})
		require.NoError(t, err)
		require.Equal(t, n.UnixNano(), tm.Created)
		require.Equal(t, n.UnixNano()+1500*msInNano, tm.Due)
		require.True(t, tm.DueTime().Equal(n.Add(1500*time.Millisecond)))
	}

	// A client-sent created is ignored: no back-dating.
	for _, created := range []string{`0`, `1`, strconv.FormatInt(nowMs-10_000, 10), `"2000-01-01T00:00:00Z"`, `"x"`, `null`} {
		tm, err := skyring.ParseTimer(withCB(`"created":`+created+`,"timeout":1000`), params())
		require.NoError(t, err, "created %s", created)
		require.Equal(t, now.UnixNano(), tm.Created, "created %s", created)
		require.Equal(t, now.UnixNano()+1000*msInNano, tm.Due, "created %s", created)
	}
}

func TestParseTimerData(t *testing.T) {
	t.Parallel()
	ok := []struct {
		raw  string // "" for absent
		want string // "" for nil Data
	}{
		{"", ""},
		{`null`, ""},
		{`"hello"`, `"hello"`},
		{`""`, `""`},
		{`"a \"quoted\" \u00e9 word\n"`, `"a \"quoted\" \u00e9 word\n"`}, // verbatim
		{`"ünïcödé ☃"`, `"ünïcödé ☃"`},
		{`{}`, `{}`},
		{`{ "a" : [ 1, 2 ], "b" : { "c" : "x y" } }`, `{"a":[1,2],"b":{"c":"x y"}}`},
		{"{\n\t\"k\":\r\n null\n}", `{"k":null}`},
	}
	for _, tc := range ok {
		fields := `"timeout":1000`
		if tc.raw != "" {
			fields += `,"data":` + tc.raw
		}
		body := withCB(fields)
		tm, err := skyring.ParseTimer(body, params())
		require.NoError(t, err, "data %s", tc.raw)
		if tc.want == "" {
			require.Nil(t, tm.Data, "data %s", tc.raw)
			require.Equal(t, "null", string(tm.Info("n").Data))
			continue
		}
		require.Equal(t, tc.want, string(tm.Data), "data %s", tc.raw)

		// Data does not alias the request body.
		for i := range body {
			body[i] = 'X'
		}
		require.Equal(t, tc.want, string(tm.Data), "data %s after the body was overwritten", tc.raw)
	}

	for _, raw := range []string{`1`, `0`, `-1.5`, `"x"1`, `[]`, `[1,2]`, `["a"]`, `true`, `false`} {
		_, err := skyring.ParseTimer(withCB(`"timeout":1000,"data":`+raw), params())
		if raw == `"x"1` {
			requireInvalid(t, err, "", "Invalid JSON")
			continue
		}
		requireInvalid(t, err, "data", "data", "data %s", raw)
	}
}

func TestParseTimerCallback(t *testing.T) {
	t.Parallel()
	parse := func(cb string) (*skyring.Timer, error) {
		body := `{"timeout":1000`
		if cb != "" {
			body += `,"callback":` + cb
		}
		return skyring.ParseTimer([]byte(body+"}"), params())
	}

	tm, err := parse(`{"transport":"http","method":"post","uri":"http://127.0.0.1/hook","extra":[1],"Method":"x"}`)
	require.NoError(t, err)
	require.Equal(t, wantCallback, tm.Callback)

	tm, err = parse(`{"transport":"my-transport","method":"anything","uri":"not even a URL ☃"}`)
	require.NoError(t, err, "transport, method and uri are opaque strings here")
	require.Equal(t, skyring.Callback{Transport: "my-transport", Method: "anything", URI: "not even a URL ☃"}, tm.Callback)

	for _, cb := range []string{"", `null`} {
		_, err := parse(cb)
		requireInvalid(t, err, "callback", "required", "callback %q", cb)
	}
	for _, cb := range []string{`"http"`, `1`, `true`, `[]`, `[{"transport":"http","method":"post","uri":"u"}]`} {
		_, err := parse(cb)
		requireInvalid(t, err, "callback", "object", "callback %s", cb)
	}

	full := map[string]string{"transport": `"http"`, "method": `"post"`, "uri": `"http://x"`}
	for _, field := range []string{"transport", "method", "uri"} {
		cases := []struct {
			raw    string // "" for absent
			reason string
		}{
			{"", "required"},
			{`null`, "required"},
			{`""`, "empty"},
			{`1`, "string"},
			{`true`, "string"},
			{`{}`, "string"},
			{`["http"]`, "string"},
		}
		for _, tc := range cases {
			var members []string
			for _, f := range []string{"transport", "method", "uri"} {
				switch {
				case f != field:
					members = append(members, fmt.Sprintf("%q:%s", f, full[f]))
				case tc.raw != "":
					members = append(members, fmt.Sprintf("%q:%s", f, tc.raw))
				}
			}
			_, err := parse("{" + strings.Join(members, ",") + "}")
			requireInvalid(t, err, "callback."+field, tc.reason, "callback.%s = %q", field, tc.raw)
		}
	}
}

func TestParseTimerBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body, field, reason string
	}{
		{``, "", "Invalid JSON"},
		{`   `, "", "Invalid JSON"},
		{`{`, "", "Invalid JSON"},
		{`{"timeout":1000,}`, "", "Invalid JSON"},
		{`{"timeout":1000} {}`, "", "Invalid JSON"},
		{`{"timeout":1000}x`, "", "Invalid JSON"},
		{`{'timeout':1000}`, "", "Invalid JSON"},
		{`timeout=1000`, "", "Invalid JSON"},
		{"\x00", "", "Invalid JSON"},
		{`null`, "", "JSON object"},
		{` null `, "", "JSON object"},
		{`[]`, "", "JSON object"},
		{`[{"timeout":1000}]`, "", "JSON object"},
		{`"{}"`, "", "JSON object"},
		{`1000`, "", "JSON object"},
		{`true`, "", "JSON object"},
		{`{}`, "timeout", "required"},
		// Keys are case-sensitive, as in the original.
		{`{"Timeout":1000,` + cbJSON + `}`, "timeout", "required"},
		{`{"TIMEOUT":1000,` + cbJSON + `}`, "timeout", "required"},
		{`{"timeout":1000,"Callback":{"transport":"http","method":"post","uri":"u"}}`, "callback", "required"},
		{`{"timeout":1000,"callback":{"Transport":"http","method":"post","uri":"u"}}`, "callback.transport", "required"},
		{`{"timeout":1000,"callback":{"transport":"http","METHOD":"post","uri":"u"}}`, "callback.method", "required"},
		{`{"timeout":1000,"callback":{"transport":"http","method":"post","URI":"u"}}`, "callback.uri", "required"},
		{`{"At":1,"timeout":1000}`, "callback", "required"},
	}
	for _, tc := range cases {
		tm, err := skyring.ParseTimer([]byte(tc.body), params())
		require.Nil(t, tm, "body %q", tc.body)
		requireInvalid(t, err, tc.field, tc.reason, "body %q", tc.body)
	}
	_, err := skyring.ParseTimer(nil, params())
	requireInvalid(t, err, "", "Invalid JSON")

	// Differently cased keys are other fields, so they are ignored.
	tm, err := skyring.ParseTimer(withCB(`"timeout":1000,"Timeout":"abc","At":true,"Data":1,"ID":"x y"`), params())
	require.NoError(t, err)
	require.Nil(t, tm.Data)
	require.Equal(t, "t1", tm.ID)

	// Unknown fields of any type are ignored; whitespace around the body is fine.
	body := "\n {\"timeout\": 1000, \"foo\": [1, {\"bar\": null}], \"node\": \"x\", \"due\": 1, " + cbJSON + "} \n"
	tm, err = skyring.ParseTimer([]byte(body), params())
	require.NoError(t, err)
	require.Equal(t, &skyring.Timer{ID: "t1", Created: now.UnixNano(), Due: now.UnixNano() + 1000*msInNano, Callback: wantCallback, Relative: true}, tm)
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestParseTimerID(t *testing.T) {
	t.Parallel()
	parse := func(id string, idField bool, fields string) (*skyring.Timer, error) {
		return skyring.ParseTimer(withCB(`"timeout":1000`+fields), skyring.ParseParams{Now: now, ID: id, IDField: idField})
	}

	// Outside id, no IDField: the body's id is ignored.
	tm, err := parse("from-path", false, `,"id":"from-body"`)
	require.NoError(t, err)
	require.Equal(t, "from-path", tm.ID)
	tm, err = parse("", false, `,"id":"from-body"`)
	require.NoError(t, err)
	require.Regexp(t, uuidV4, tm.ID)
	tm, err = parse("", false, `,"id":1`)
	require.NoError(t, err, "a non-string body id is ignored without IDField")
	require.Regexp(t, uuidV4, tm.ID)

	// IDField: a body id wins.
	for _, outside := range []string{"", "from-path"} {
		tm, err = parse(outside, true, `,"id":"from-body"`)
		require.NoError(t, err)
		require.Equal(t, "from-body", tm.ID)
	}
	// A null or absent body id leaves the outside one, or a generated one.
	for _, fields := range []string{"", `,"id":null`} {
		tm, err = parse("from-path", true, fields)
		require.NoError(t, err)
		require.Equal(t, "from-path", tm.ID)
		tm, err = parse("", true, fields)
		require.NoError(t, err)
		require.Regexp(t, uuidV4, tm.ID)
	}
	// An empty body id with no outside id: generated (ParseParams.ID doc).
	tm, err = parse("", true, `,"id":""`)
	require.NoError(t, err)
	require.Regexp(t, uuidV4, tm.ID)
	// Keys are case-sensitive.
	tm, err = parse("", true, `,"ID":"x"`)
	require.NoError(t, err)
	require.Regexp(t, uuidV4, tm.ID)

	// A non-string body id is a 400.
	for _, raw := range []string{`1`, `true`, `{}`, `["a"]`, `1.5`} {
		_, err := parse("from-path", true, `,"id":`+raw)
		requireInvalid(t, err, "id", "string", "id %s", raw)
	}
	// An invalid id, from the body or from outside, is a 400.
	for _, id := range []string{"a b", "a/b", "tab\there", "é", strings.Repeat("x", 257), "\x7f"} {
		raw, err := json.Marshal(id)
		require.NoError(t, err)
		_, err = parse("", true, `,"id":`+string(raw))
		requireInvalid(t, err, "id", "", "body id %q", id)
		_, err = parse(id, false, "")
		requireInvalid(t, err, "id", "", "outside id %q", id)
		_, err = parse(id, true, "")
		requireInvalid(t, err, "id", "", "outside id %q with IDField", id)
	}
	// The body id wins even over an invalid outside id.
	tm, err = parse("a b", true, `,"id":"ok"`)
	require.NoError(t, err)
	require.Equal(t, "ok", tm.ID)
	// Longest id.
	long := strings.Repeat("~", skyring.MaxIDLen)
	tm, err = parse("", true, `,"id":"`+long+`"`)
	require.NoError(t, err)
	require.Equal(t, long, tm.ID)
}

// TestParseTimerEmptyBodyIDKeepsOutsideID: ParseParams.ID says "A non-empty
// body id wins over ID", so an empty body id must leave ID alone.
func TestParseTimerEmptyBodyIDKeepsOutsideID(t *testing.T) {
	t.Parallel()
	tm, err := skyring.ParseTimer(withCB(`"timeout":1000,"id":""`), skyring.ParseParams{Now: now, ID: "from-path", IDField: true})
	require.NoError(t, err)
	require.Equal(t, "from-path", tm.ID)
}

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := make(map[string]struct{}, 2000)
	for range 2000 {
		id := skyring.NewID()
		require.Regexp(t, uuidV4, id)
		require.NoError(t, skyring.ValidateID(id))
		require.NotContains(t, seen, id)
		seen[id] = struct{}{}
	}

	// Ids generated by ParseTimer are UUIDs too, and unique.
	seen = make(map[string]struct{}, 500)
	body := withCB(`"timeout":1000`)
	for range 500 {
		tm, err := skyring.ParseTimer(body, skyring.ParseParams{Now: now})
		require.NoError(t, err)
		require.Regexp(t, uuidV4, tm.ID)
		require.NotContains(t, seen, tm.ID)
		seen[tm.ID] = struct{}{}
	}
}

func TestParseTimerResult(t *testing.T) {
	t.Parallel()
	body := []byte(`{"timeout":"2500.5","data":{ "order" : 42 },"callback":{"transport":"nats","method":"publish","uri":"orders.due"}}`)
	tm, err := skyring.ParseTimer(body, skyring.ParseParams{Now: now, ID: "order-42"})
	require.NoError(t, err)
	require.Equal(t, &skyring.Timer{
		ID:       "order-42",
		Created:  now.UnixNano(),
		Due:      now.UnixNano() + 2500*msInNano,
		Data:     []byte(`{"order":42}`),
		Callback: skyring.Callback{Transport: "nats", Method: "publish", URI: "orders.due"},
		Relative: true,
	}, tm)
}

func TestParseID(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		`{"id":"abc"}`:                                  "abc",
		`{"id":"a~!z","timeout":1,"x":[1]}`:             "a~!z",
		` {"id" : "` + strings.Repeat("i", 256) + `"} `: strings.Repeat("i", 256),
		`{"ID":"ignored","id":"real"}`:                  "real",
		`{"id":"\u0041"}`:                               "A",
	}
	for body, want := range ok {
		id, err := skyring.ParseID([]byte(body))
		require.NoError(t, err, body)
		require.Equal(t, want, id, body)
	}

	bad := []struct {
		body, field, reason string
	}{
		{``, "", "Invalid JSON"},
		{`{"id":`, "", "Invalid JSON"},
		{`null`, "", "JSON object"},
		{`[]`, "", "JSON object"},
		{`"abc"`, "", "JSON object"},
		{`{}`, "id", "required"},
		{`{"id":null}`, "id", "required"},
		{`{"ID":"abc"}`, "id", "required"},
		{`{"id":1}`, "id", "string"},
		{`{"id":true}`, "id", "string"},
		{`{"id":["a"]}`, "id", "string"},
		{`{"id":{}}`, "id", "string"},
		{`{"id":""}`, "id", "empty"},
		{`{"id":"a b"}`, "id", ""},
		{`{"id":"a/b"}`, "id", ""},
		{`{"id":"` + strings.Repeat("i", 257) + `"}`, "id", "256"},
	}
	for _, tc := range bad {
		id, err := skyring.ParseID([]byte(tc.body))
		require.Empty(t, id, tc.body)
		requireInvalid(t, err, tc.field, tc.reason, tc.body)
	}
}

func TestValidateID(t *testing.T) {
	t.Parallel()
	ok := []string{
		"a", "~", "!", "!~", "abc-123_XYZ.v1", "order:42", "a?b#c%20d", "\"'`", "{}[]<>|\\^",
		"550e8400-e29b-41d4-a716-446655440000", strings.Repeat("x", 255), strings.Repeat("x", 256),
	}
	for _, id := range ok {
		require.NoError(t, skyring.ValidateID(id), "%q", id)
	}
	// Every printable ASCII byte but '/' is allowed.
	for c := byte('!'); c <= '~'; c++ {
		err := skyring.ValidateID(string([]byte{'a', c, 'z'}))
		if c == '/' {
			requireInvalid(t, err, "id", "", "byte %q", c)
		} else {
			require.NoError(t, err, "byte %q", c)
		}
	}

	bad := []struct {
		id, reason string
	}{
		{"", "empty"},
		{strings.Repeat("x", 257), "256"},
		{strings.Repeat("x", 1000), "256"},
		{" ", ""},
		{"a b", ""},
		{" a", ""},
		{"a ", ""},
		{"/", ""},
		{"a/b", ""},
		{"/a", ""},
		{"a\x00b", ""},
		{"a\tb", ""},
		{"a\nb", ""},
		{"a\rb", ""},
		{"\x1f", ""},
		{"\x7f", ""},
		{"é", ""},
		{"日本", ""},
		{"a\xffb", ""},
		{"\x80", ""},
	}
	for _, tc := range bad {
		requireInvalid(t, skyring.ValidateID(tc.id), "id", tc.reason, "%q", tc.id)
	}
	// Control and non-ASCII bytes, one by one.
	for c := 0; c < 256; c++ {
		if c >= '!' && c <= '~' {
			continue
		}
		requireInvalid(t, skyring.ValidateID(string([]byte{byte(c)})), "id", "", "byte %#x", c)
	}
}
