package natstransport_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/natstransport"
	"github.com/skyring/skyring/transports/transportstest"
)

// TestValidateReserved: the node's own subjects and the server's are refused
// at create (a 400 naming callback.uri) and at delivery (permanent, unsent),
// comparing by tokens and case-sensitively.
func TestValidateReserved(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prefix, subject string
		refused         bool
	}{
		{"skyring", "_SKYRING.skyring.members", true},
		{"skyring", "_SKYRING.skyring.relay.node-1", true},
		{"skyring", "_SKYRING.other.members", true},
		{"skyring", "_SKYRING.x", true},
		{"skyring", "_INBOX.abc", true},
		{"skyring", "_INBOX.abc.def", true},
		{"skyring", "$SYS.REQ.SERVER.PING", true},
		{"skyring", "$JS.API.STREAM.DELETE.x", true},
		{"skyring", "skyring.timer.create", true},
		{"skyring", "skyring.timer.cancel", true},
		{"skyring", "skyring.events.create", true},
		{"skyring", "skyring.node.join", true},
		{"acme.prod", "acme.prod.timer.create", true},
		{"acme.prod", "acme.prod.events.fail", true},
		{"acme.prod", "acme.prod.node.leave", true},

		{"skyring", "_SKYRING", false},           // the token alone is not under it
		{"skyring", "_skyring.x.members", false}, // case-sensitive
		{"skyring", "_INBOX", false},
		{"skyring", "$SYSX.y", false},
		{"skyring", "skyring.timers.x", false}, // token-aware
		{"skyring", "skyring.timer", false},
		{"skyring", "skyring.eventsx.a", false},
		{"skyring", "Skyring.timer.create", false},
		{"skyring", "skyring.jobs.x", false},
		{"skyring", "other.timer.create", false},
		{"acme.prod", "skyring.timer.create", false},
		{"acme.prod", "acme.timer.create", false},
		{"", "skyring.timer.create", false}, // no prefix: only the fixed ones
		{"", "_SKYRING.skyring.members", true},
	}
	for _, tc := range cases {
		t.Run(tc.prefix+"/"+tc.subject, func(t *testing.T) {
			t.Parallel()
			conn := &countingConn{}
			tr := newTransport(t, natstransport.Options{Conn: conn, Prefix: tc.prefix})
			for _, method := range []string{"publish", "request"} {
				err := tr.Validate(skyring.Callback{Transport: "nats", Method: method, URI: tc.subject})
				execErr := tr.Execute(ctx(t), timer("r", method, tc.subject, `{"kind":"heartbeat","id":"evil"}`))
				if !tc.refused {
					require.NoError(t, err)
					require.NoError(t, execErr)
					continue
				}
				transportstest.RequireRejected(t, err, "callback.uri", "is refused by the nats transport", natstransport.ErrReservedSubject)
				require.ErrorIs(t, execErr, transports.ErrPermanent)
				require.ErrorIs(t, execErr, natstransport.ErrReservedSubject)
			}
			if tc.refused {
				require.Zero(t, conn.sent.Load(), "nothing sent to a reserved subject")
			}
		})
	}
}

func TestValidateAllow(t *testing.T) {
	t.Parallel()
	conn := &countingConn{}
	tr := newTransport(t, natstransport.Options{Conn: conn, Prefix: "skyring", Allow: []string{"jobs.>", "alerts.*.high", "exact.one"}})
	cases := []struct {
		subject string
		ok      bool
	}{
		{"jobs.x", true},
		{"jobs.x.y.z", true},
		{"alerts.db.high", true},
		{"exact.one", true},
		{"jobs", false},
		{"Jobs.x", false},
		{"alerts.db.low", false},
		{"alerts.db.high.x", false},
		{"exact.one.two", false},
		{"exact", false},
		{"other.x", false},
	}
	for _, tc := range cases {
		err := tr.Validate(skyring.Callback{Transport: "nats", Method: "publish", URI: tc.subject})
		execErr := tr.Execute(ctx(t), timer("a", "publish", tc.subject, `"x"`))
		if tc.ok {
			require.NoError(t, err, tc.subject)
			require.NoError(t, execErr, tc.subject)
			continue
		}
		transportstest.RequireRejected(t, err, "callback.uri", "--nats:callback-allow", natstransport.ErrSubjectNotAllowed)
		require.ErrorIs(t, execErr, transports.ErrPermanent, tc.subject)
		require.ErrorIs(t, execErr, natstransport.ErrSubjectNotAllowed, tc.subject)
	}

	// A reserved subject stays refused even when a pattern allows it.
	tr = newTransport(t, natstransport.Options{Conn: conn, Prefix: "skyring", Allow: []string{">"}})
	err := tr.Validate(skyring.Callback{Transport: "nats", Method: "publish", URI: "skyring.timer.create"})
	require.ErrorIs(t, err, natstransport.ErrReservedSubject)
	require.NoError(t, tr.Validate(skyring.Callback{Transport: "nats", Method: "publish", URI: "any.thing"}))
}

func TestNewBadAllowPattern(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "a..b", ".a", "a.>.b", "a b"} {
		_, err := natstransport.New(natstransport.Options{Conn: &countingConn{}, Allow: []string{p}})
		require.ErrorIs(t, err, natstransport.ErrBadPattern, "%q", p)
	}
}

func TestMatchSubject(t *testing.T) {
	t.Parallel()
	require.True(t, natstransport.MatchSubject("a.*.c", "a.b.c"))
	require.True(t, natstransport.MatchSubject("a.>", "a.b.c"))
	require.False(t, natstransport.MatchSubject("a.>", "a"))
	require.False(t, natstransport.MatchSubject("a.*", "a.b.c"))
	require.False(t, natstransport.MatchSubject("a.b", "a.B"))
}
