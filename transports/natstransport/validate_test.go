package natstransport_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/natstransport"
	"github.com/skyring/skyring/transports/transportstest"
)

// countingConn counts what the transport sends, and sends nothing.
type countingConn struct{ sent atomic.Int64 }

func (c *countingConn) Publish(string, []byte) error { c.sent.Add(1); return nil }
func (c *countingConn) Request(context.Context, string, []byte) ([]byte, error) {
	c.sent.Add(1)
	return []byte("ok"), nil
}

func TestValidate(t *testing.T) {
	t.Parallel()
	conn := &countingConn{}
	tr := newTransport(t, natstransport.Options{Conn: conn})
	cases := []struct {
		name, method, subject string
		field                 string // "" when valid
		reasonHas             string
	}{
		// The README's example and the forms NATS allows to publish to.
		{name: "readme", method: "publish", subject: "jobs.reminders"},
		{name: "request", method: "request", subject: "jobs.ask"},
		{name: "upper", method: "PUBLISH", subject: "a"},
		{name: "mixed", method: "Request", subject: "a.b"},
		{name: "dashes digits", method: "publish", subject: "a.b-c_d.E9"},
		// Reserved subjects ($SYS, _INBOX, ...) are in TestValidateReserved.
		{name: "dollar", method: "publish", subject: "$KV.x"},
		{name: "underscore", method: "request", subject: "_INBOXES.abc"},
		{name: "star inside token", method: "publish", subject: "a.*b"},
		{name: "gt inside token", method: "publish", subject: "a>"},
		{name: "utf-8", method: "publish", subject: "jobs.émoji😀"},

		{name: "http method", method: "post", subject: "jobs.x", field: "callback.method", reasonHas: `callback.method "post" is not supported by the nats transport; want publish or request`},
		{name: "fetch", method: "fetch", subject: "jobs.x", field: "callback.method", reasonHas: `"fetch"`},
		{name: "prefix", method: "pub", subject: "jobs.x", field: "callback.method", reasonHas: "callback.method"},
		{name: "trailing space", method: "publish ", subject: "jobs.x", field: "callback.method", reasonHas: `"publish "`},
		{name: "plural", method: "requests", subject: "jobs.x", field: "callback.method", reasonHas: "callback.method"},
		{name: "empty method", method: "", subject: "jobs.x", field: "callback.method", reasonHas: `""`},
		{name: "bad method first", method: "post", subject: "a b", field: "callback.method", reasonHas: "callback.method"},

		{name: "space", method: "publish", subject: "a b", field: "callback.uri", reasonHas: `callback.uri "a b" is not a NATS subject to publish to: whitespace or control character`},
		{name: "tab", method: "request", subject: "a\tb", field: "callback.uri", reasonHas: `"a\tb"`},
		{name: "newline", method: "publish", subject: "a\nb", field: "callback.uri", reasonHas: "whitespace"},
		{name: "del", method: "publish", subject: "a\x7fb", field: "callback.uri", reasonHas: "control character"},
		{name: "empty", method: "publish", subject: "", field: "callback.uri", reasonHas: `callback.uri "" is not a NATS subject to publish to: empty`},
		{name: "leading dot", method: "publish", subject: ".a", field: "callback.uri", reasonHas: "empty token"},
		{name: "trailing dot", method: "publish", subject: "a.", field: "callback.uri", reasonHas: "empty token"},
		{name: "double dot", method: "publish", subject: "a..b", field: "callback.uri", reasonHas: "empty token"},
		{name: "star", method: "publish", subject: "*", field: "callback.uri", reasonHas: "wildcard"},
		{name: "star token", method: "request", subject: "jobs.*", field: "callback.uri", reasonHas: "wildcard"},
		{name: "star middle", method: "publish", subject: "a.*.b", field: "callback.uri", reasonHas: "wildcard"},
		{name: "full wildcard", method: "publish", subject: "jobs.>", field: "callback.uri", reasonHas: "wildcard"},
		{name: "gt", method: "publish", subject: ">", field: "callback.uri", reasonHas: "wildcard"},
		{name: "url", method: "publish", subject: "http://x/y z", field: "callback.uri", reasonHas: "callback.uri"},
	}
	valid := int64(0)
	for _, tc := range cases {
		if tc.field == "" {
			valid++
		}
	}
	t.Cleanup(func() { // after the parallel cases: only the valid ones sent
		if got := conn.sent.Load(); got != valid {
			t.Errorf("%d messages sent, want %d (one per valid case)", got, valid)
		}
	})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cb := skyring.Callback{Transport: "nats", Method: tc.method, URI: tc.subject}
			err := tr.Validate(cb)
			execErr := tr.Execute(ctx(t), timer("v", tc.method, tc.subject, `"x"`))
			if tc.field == "" {
				require.NoError(t, err)
				require.NoError(t, execErr, "Execute agrees with Validate")
				require.Equal(t, err == nil, natstransport.ValidateSubject(tc.subject) == nil)
				return
			}
			sentinel := map[string]error{"callback.method": natstransport.ErrBadMethod, "callback.uri": natstransport.ErrBadSubject}[tc.field]
			transportstest.RequireRejected(t, err, tc.field, tc.reasonHas, sentinel)
			_, reason := skyring.Status(err)
			for i := range len(reason) {
				require.True(t, reason[i] >= ' ' && reason[i] < 0x7f, "byte %d of %q: the reason becomes a header", i, reason)
			}

			require.ErrorIs(t, execErr, transports.ErrPermanent, "Execute agrees with Validate")
			require.ErrorIs(t, execErr, sentinel)
			if tc.field == "callback.uri" {
				require.ErrorIs(t, natstransport.ValidateSubject(tc.subject), natstransport.ErrBadSubject)
			}
		})
	}
}

func TestValidateLongSubject(t *testing.T) {
	t.Parallel()
	tr := newTransport(t, natstransport.Options{Conn: &countingConn{}})
	err := tr.Validate(skyring.Callback{Transport: "nats", Method: "publish", URI: strings.Repeat("a", 1<<20) + " b"})
	require.ErrorContains(t, err, "callback.uri")
	require.ErrorContains(t, err, "whitespace")
	require.Less(t, len(err.Error()), 300, "a huge subject is cut in the reason")
}
