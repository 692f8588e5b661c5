package bus

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nats-io/nats-server/v2/server"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/ring"
)

func testTimer(id string) *skyring.Timer {
	return &skyring.Timer{
		ID: id, Created: 1_700_000_000_000_000_000, Due: 1_700_000_060_000_000_000,
		Data:     json.RawMessage(`{"k":"v"}`),
		Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://x/" + id},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	t.Parallel()
	for _, cmd := range []Command{
		{Op: OpCreate, Timer: testTimer("a"), From: "n1"},
		{Op: OpCreate, Timer: relative(testTimer("a2")), From: "n1"},
		{Op: OpUpdate, Timer: &skyring.Timer{ID: "b"}, From: "n1"},
		{Op: OpUpdate, Timer: relative(testTimer("b2")), From: "n1"},
		{Op: OpCancel, ID: "c", From: "n2"},
		{Op: OpGet, ID: "d"},
		{Op: OpHandoff, Timers: []*skyring.Timer{testTimer("e"), testTimer("f")}, From: "n3"},
		{Op: OpHandoff, Timer: testTimer("g"), Timers: []*skyring.Timer{testTimer("h")}},
		{Op: OpList, ID: "i", State: "failed", Limit: 10, From: "n1"},
		{Op: OpList, ID: "j", Limit: 10, DueAfter: 1, DueBefore: 1 << 50, Prefix: "p-", Host: "h:1", From: "n1"},
		{Op: OpCancelMany, State: "pending", Limit: 256, Prefix: "k", From: "n1"},
		{Op: OpCancelMany, Limit: 256, Host: "h", From: "n1"},
	} {
		data := appendCommand(nil, &cmd, 1234)
		require.LessOrEqual(t, len(data), commandSize(&cmd))
		got, timeout, err := decodeCommand(data)
		require.NoError(t, err)
		require.EqualValues(t, 1234, timeout)
		require.Equal(t, cmd, got)
	}
}

// An unfiltered list encodes as it did before filters existed (no flag,
// nothing after the limit), so that older nodes read it; a filter flag on
// another op is corrupt.
func TestCommandListEncodingUnchanged(t *testing.T) {
	t.Parallel()
	data := appendCommand(nil, &Command{Op: OpList, ID: "a", State: "failed", Limit: 7, From: "n"}, 5)
	want := []byte{commandVersion, byte(OpList), 0, 5, 1, 'n', 1, 'a', 6, 'f', 'a', 'i', 'l', 'e', 'd', 7, 0}
	require.Equal(t, want, data)
	bad := appendCommand(nil, &Command{Op: OpGet, ID: "a"}, 0)
	bad[2] |= flagFilter
	_, _, err := decodeCommand(bad)
	require.ErrorIs(t, err, errCorrupt)
}

func relative(t *skyring.Timer) *skyring.Timer { t.Relative = true; return t }

// TestCommandRelativeFlag: Command.Timer's Relative travels as bit 1 of the
// flags byte, outside the timer's own encoding; a command without the bit
// (as every build before it sent) carries an absolute timer.
func TestCommandRelativeFlag(t *testing.T) {
	t.Parallel()
	abs := Command{Op: OpCreate, Timer: testTimer("a"), From: "n1"}
	rel := Command{Op: OpCreate, Timer: relative(testTimer("a")), From: "n1"}
	absData := appendCommand(nil, &abs, 1234)
	relData := appendCommand(nil, &rel, 1234)
	require.Equal(t, byte(flagTimer), absData[2])
	require.Equal(t, byte(flagTimer|flagRelative), relData[2])
	// Only the flags byte differs: the timer's encoding is the same.
	require.Equal(t, absData[:2], relData[:2])
	require.Equal(t, absData[3:], relData[3:])

	got, _, err := decodeCommand(relData)
	require.NoError(t, err)
	require.True(t, got.Timer.Relative)
	got, _, err = decodeCommand(absData)
	require.NoError(t, err)
	require.False(t, got.Timer.Relative, "a command without the bit is absolute")
	require.Equal(t, abs, got)

	// A create as builds before the bit encoded it decodes as absolute.
	const golden = "010101d209026e310001000000120101670204000468747470047" +
		"06f73740175"
	data, err := hex.DecodeString(golden)
	require.NoError(t, err)
	got, timeout, err := decodeCommand(data)
	require.NoError(t, err)
	require.EqualValues(t, 1234, timeout)
	require.Equal(t, Command{
		Op:    OpCreate,
		Timer: &skyring.Timer{ID: "g", Created: 1, Due: 2, Callback: skyring.Callback{Transport: "http", Method: "post", URI: "u"}},
		From:  "n1",
	}, got)

	// A hand-off batch is absolute: the bit belongs to Command.Timer alone.
	batch := Command{Op: OpHandoff, Timers: []*skyring.Timer{relative(testTimer("h"))}}
	got, _, err = decodeCommand(appendCommand(nil, &batch, 0))
	require.NoError(t, err)
	require.False(t, got.Timers[0].Relative)

	// The bit without a timer is corrupt.
	noTimer := appendCommand(nil, &Command{Op: OpGet, ID: "x"}, 0)
	noTimer[2] |= flagRelative
	_, _, err = decodeCommand(noTimer)
	require.ErrorIs(t, err, errCorrupt)
}

// TestCommandGolden: a command encoded before the codec moved to
// internal/wire decodes, and encodes to the same bytes.
func TestCommandGolden(t *testing.T) {
	t.Parallel()
	const golden = "010501d209026e31026964070200000012010167020400046874747004706f737401750000000c010168000003227822000000"
	want := Command{
		Op:     OpHandoff,
		Timer:  &skyring.Timer{ID: "g", Created: 1, Due: 2, Callback: skyring.Callback{Transport: "http", Method: "post", URI: "u"}},
		Timers: []*skyring.Timer{{ID: "h", Data: json.RawMessage(`"x"`)}},
		From:   "n1",
		ID:     "id",
		Ring:   7,
	}
	data, err := hex.DecodeString(golden)
	require.NoError(t, err)
	got, timeout, err := decodeCommand(data)
	require.NoError(t, err)
	require.EqualValues(t, 1234, timeout)
	require.Equal(t, want, got)
	require.Equal(t, golden, hex.EncodeToString(appendCommand(nil, &want, 1234)))
}

func TestReplyRoundTrip(t *testing.T) {
	t.Parallel()
	info := testTimer("a").Info("n1")
	noData := testTimer("b").Info("n1")
	noData.Data = nil
	failed := testTimer("c")
	failed.State, failed.Attempts, failed.LastError, failed.LastStatus, failed.Finished = skyring.StateFailed, 3, "boom", 503, 7e6
	failed.Callback.Retry = skyring.Retry{Attempts: 4, MinBackoff: 5, MaxBackoff: 6}
	fate := failed.Info("n2")
	for _, r := range []Reply{
		{Status: 200},
		{Status: 404, Code: skyring.CodeNotFound, Reason: "Timer not found"},
		{Status: 503, Code: 255, Reason: "a code from a newer build"},
		{Status: 200, Info: &info},
		{Status: 200, Info: &noData},
		{Status: 200, Info: &fate},
		{Status: 200, Timers: []*skyring.Timer{testTimer("l1"), testTimer("l2")}, Cursor: "l9", More: true},
		{Status: 200, Acked: []string{"h1", "", "h/3"}},
	} {
		got, err := decodeReply(appendReply(nil, &r))
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
}

// TestReplyCarriesSentinels: every sentinel, as the handler's error, comes
// out of the reply's wire encoding as the same sentinel.
func TestReplyCarriesSentinels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err, want error
	}{
		{skyring.ErrTimerNotFound, skyring.ErrTimerNotFound},
		{fmt.Errorf("cancel x: %w", skyring.ErrTimerNotFound), skyring.ErrTimerNotFound},
		{skyring.ErrTimerExists, skyring.ErrTimerExists},
		{skyring.ErrBodyTooLarge, skyring.ErrBodyTooLarge},
		{skyring.ErrNoOwner, skyring.ErrNoOwner},
		{skyring.ErrClosed, skyring.ErrClosed},
		{fmt.Errorf("storing: %w", skyring.ErrClosed), skyring.ErrClosed},
		{skyring.ErrOwnerTimeout, skyring.ErrOwnerTimeout},
		{skyring.ErrInvalid, skyring.ErrInvalid},
		{&skyring.ValidationError{Field: "timeout", Reason: "timeout is required"}, skyring.ErrInvalid},
		{skyring.ErrUnknownTransport, skyring.ErrUnknownTransport},
		{skyring.UnknownTransportError("smtp", []string{"http"}), skyring.ErrUnknownTransport},
	} {
		sent := ReplyFromError(tc.err)
		got, err := decodeReply(appendReply(nil, &sent))
		require.NoError(t, err)
		require.Equal(t, sent, got)
		require.ErrorIs(t, got.Err(), tc.want, "%v", tc.err)
		if tc.want == skyring.ErrUnknownTransport {
			require.ErrorIs(t, got.Err(), skyring.ErrInvalid)
		}
	}

	rep := ReplyFromError(nil)
	require.Equal(t, Reply{Status: 200}, rep)
	require.NoError(t, rep.Err())

	var se *skyring.StatusError
	rep = ReplyFromError(errors.New("disk on fire"))
	require.Equal(t, skyring.CodeInternal, rep.Code)
	require.ErrorAs(t, rep.Err(), &se)
	require.Equal(t, 500, se.Status)
}

// TestReplyReasonIsNotACode: a reply whose reason reads "Node is shutting
// down" but whose code says something else is not ErrClosed.
func TestReplyReasonIsNotACode(t *testing.T) {
	t.Parallel()
	_, closed := skyring.Status(skyring.ErrClosed)
	for _, r := range []Reply{
		{Status: 503, Code: skyring.CodeNoOwner, Reason: closed},
		{Status: 503, Code: skyring.CodeInternal, Reason: closed},
		{Status: 503, Reason: closed}, // no code: the status alone, 503 is no owner
	} {
		got, err := decodeReply(appendReply(nil, &r))
		require.NoError(t, err)
		require.NotErrorIs(t, got.Err(), skyring.ErrClosed, "%+v", r)
	}
	r := Reply{Status: 503, Code: skyring.CodeClosed, Reason: "bye"}
	got, err := decodeReply(appendReply(nil, &r))
	require.NoError(t, err)
	require.ErrorIs(t, got.Err(), skyring.ErrClosed)
}

func TestDecodeCorrupt(t *testing.T) {
	t.Parallel()
	cmd := appendCommand(nil, &Command{Op: OpHandoff, Timers: []*skyring.Timer{testTimer("e")}, From: "n"}, 5)
	for i := range cmd {
		_, _, err := decodeCommand(cmd[:i])
		require.ErrorIs(t, err, errCorrupt, "truncated at %d", i)
	}
	_, _, err := decodeCommand(append(cmd, 0))
	require.ErrorIs(t, err, errCorrupt)
	info := testTimer("a").Info("n1")
	rep := appendReply(nil, &Reply{Status: 200, Info: &info})
	old := append([]byte{1}, rep[1:]...) // a reply in version 1, which had no code
	_, err = decodeReply(old)
	require.ErrorIs(t, err, errCorrupt)
	for i := range rep {
		_, err := decodeReply(rep[:i])
		require.ErrorIs(t, err, errCorrupt, "truncated at %d", i)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(appendCommand(nil, &Command{Op: OpCreate, Timer: testTimer("a"), From: "n1"}, 10))
	f.Add(appendCommand(nil, &Command{Op: OpUpdate, Timer: relative(testTimer("a")), From: "n1"}, 10))
	f.Add(appendCommand(nil, &Command{Op: OpHandoff, Timers: []*skyring.Timer{testTimer("e"), testTimer("f")}}, 0))
	f.Add(appendCommand(nil, &Command{Op: OpGet, ID: "x"}, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, timeout, err := decodeCommand(data)
		if err != nil {
			return
		}
		again, timeout2, err := decodeCommand(appendCommand(nil, &cmd, timeout))
		require.NoError(t, err)
		require.Equal(t, timeout, timeout2)
		require.Equal(t, cmd, again)
	})
}

func FuzzDecodeReply(f *testing.F) {
	info := testTimer("a").Info("n1")
	f.Add(appendReply(nil, &Reply{Status: 200, Info: &info}))
	f.Add(appendReply(nil, &Reply{Status: 409, Code: skyring.CodeExists, Reason: "exists"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeReply(data)
		if err != nil {
			return
		}
		again, err := decodeReply(appendReply(nil, &r))
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}

func TestRouteURLs(t *testing.T) {
	t.Parallel()
	b, err := New(Options{NodeID: "n", ClusterPort: 3455, Seeds: []string{
		"127.0.0.1:3455", "localhost:3455", "nats-route://127.0.0.1:3455", "[::1]:3455", // self
		"127.0.0.1:3456", " 10.0.0.7:3455 ", "127.0.0.1:3456", "", // others, a duplicate, an empty one
	}})
	require.NoError(t, err)
	urls, err := b.routeURLs()
	require.NoError(t, err)
	var got []string
	for _, u := range urls {
		got = append(got, u.String())
	}
	require.Equal(t, []string{"nats-route://127.0.0.1:3456", "nats-route://10.0.0.7:3455"}, got)

	o, err := b.serverOptions()
	require.NoError(t, err)
	require.Equal(t, "skyring", o.Cluster.Name)
	require.Equal(t, 3455, o.Cluster.Port)
	require.Equal(t, DefaultNATSPort, o.Port, "NATSPort 0 is the default port")
	require.True(t, o.NoSigs)
	require.EqualValues(t, DefaultMaxPayload, o.MaxPayload)

	// Every port: 0 is the default, -1 a free one (nats-server's RANDOM_PORT).
	b, err = New(Options{NodeID: "n"})
	require.NoError(t, err)
	o, err = b.serverOptions()
	require.NoError(t, err)
	require.Equal(t, DefaultClusterPort, o.Cluster.Port)
	require.Equal(t, DefaultNATSPort, o.Port)
	require.Empty(t, o.Routes)
	b, err = New(Options{NodeID: "n", NATSPort: -1, ClusterPort: -1})
	require.NoError(t, err)
	o, err = b.serverOptions()
	require.NoError(t, err)
	require.Equal(t, server.RANDOM_PORT, o.Cluster.Port)
	require.Equal(t, server.RANDOM_PORT, o.Port)

	for _, bad := range []string{"nohost", "h:0", "h:x", "h:70000"} {
		b, err := New(Options{NodeID: "n", ClusterPort: 1, Seeds: []string{bad}})
		require.NoError(t, err)
		_, err = b.routeURLs()
		require.Error(t, err, bad)
	}
}

func TestSameHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		seed, own string
		want      bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"localhost", "127.0.0.1", true},
		{"127.0.0.2", "localhost", true},
		{"0.0.0.0", "0.0.0.0", true},
		{"127.0.0.1", "0.0.0.0", true},
		{"10.9.9.9", "127.0.0.1", false},
		{"example.com", "127.0.0.1", false},
		{"EXAMPLE.com", "example.COM", true},
	} {
		require.Equal(t, tc.want, sameHost(tc.seed, tc.own), fmt.Sprintf("%s vs %s", tc.seed, tc.own))
	}
}

func TestOpString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "handoff", OpHandoff.String())
	require.Equal(t, "op(9)", Op(9).String())
}

// A hand-off sent again says so (Resend), and only then.
func TestCommandResendFlag(t *testing.T) {
	t.Parallel()
	for _, resend := range []bool{false, true} {
		cmd := Command{Op: OpHandoff, From: "n1", Ring: 9, Resend: resend, Timers: []*skyring.Timer{testTimer("r1")}}
		got, _, err := decodeCommand(appendCommand(nil, &cmd, 5))
		require.NoError(t, err)
		require.Equal(t, cmd, got)
	}
}

// The subscriptions' pending limits are bounded: a flood costs at most
// what subscribe documents.
func TestPendingLimitsBounded(t *testing.T) {
	t.Parallel()
	b, err := New(Options{NodeID: "pl", NATSPort: -1, ClusterPort: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background(), nopHandler{}))
	t.Cleanup(func() { _ = b.Close() })
	msgs, bytes, err := b.subs.relay.PendingLimits()
	require.NoError(t, err)
	require.Equal(t, relayPendingMsgs, msgs)
	require.Equal(t, relayPendingBytes, bytes)
	total := bytes
	for _, s := range b.subs.api {
		_, bytes, err := s.PendingLimits()
		require.NoError(t, err)
		total += bytes
	}
	require.LessOrEqual(t, total, 321<<20)
}

// nopHandler answers nothing useful; enough to start a Bus.
type nopHandler struct{}

func (nopHandler) Create(context.Context, *skyring.Timer) error      { return nil }
func (nopHandler) Update(context.Context, *skyring.Timer) error      { return nil }
func (nopHandler) Cancel(context.Context, string) error              { return nil }
func (nopHandler) Get(context.Context, string) (skyring.Info, error) { return skyring.Info{}, nil }
func (nopHandler) Retry(context.Context, string) error               { return nil }
func (nopHandler) HandleRelay(context.Context, Command) Reply        { return Reply{Status: 200} }
func (nopHandler) MemberSeen(ring.Member) bool                       { return false }
func (nopHandler) MemberLeft(string)                                 {}
func (nopHandler) LocalMember() ring.Member                          { return ring.Member{} }
func (nopHandler) List(context.Context, skyring.ListQuery) (skyring.ListPage, error) {
	return skyring.ListPage{}, nil
}
func (nopHandler) CancelMatching(context.Context, skyring.Filter) (int, error) { return 0, nil }

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pass@host:4222", "nats://user:xxxxx@host:4222"},
		{"nats://s3cr3t-token@host:4222", "nats://xxxxx@host:4222"},
		{"user:pass@host:4222", "xxxxx@host:4222"},
		{"tls://a:b@h:1", "tls://a:xxxxx@h:1"},
	} {
		got := redactURL(c.in)
		if got != c.want {
			t.Errorf("redactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := redactURLs([]string{"nats://a:b@h:1", " nats://h:2"}); got != "nats://a:xxxxx@h:1,nats://h:2" {
		t.Errorf("redactURLs = %q", got)
	}
}
