package skyringcli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// parseRun parses `skyring run <args>` with the real flags and returns the
// node options they make, or the error.
func parseRun(t *testing.T, args ...string) (node.Options, error) {
	t.Helper()
	a := New()
	a.Stdout, a.Stderr = io.Discard, io.Discard
	cmd := a.runCommand(nil)
	var opts node.Options
	cmd.Action = func(c *cli.Context) error {
		var err error
		opts, err = a.options(c, nil)
		return err
	}
	app := &cli.App{Name: "skyring", Writer: io.Discard, ErrWriter: io.Discard, Commands: []*cli.Command{cmd}}
	err := app.RunContext(context.Background(), append([]string{"skyring", "run", "--storage:backend", "memory"}, args...))
	return opts, err
}

func TestDebugFlagsOff(t *testing.T) {
	o, err := parseRun(t)
	require.NoError(t, err)
	require.Nil(t, o.Clock, "the node's default clock")
	require.Nil(t, o.Faults.WrapStore)
	require.Nil(t, o.Faults.DropRelayReply)
	require.Zero(t, o.HandoffTimeout, "the node's default")
}

func TestDebugHandoffTimeout(t *testing.T) {
	o, err := parseRun(t, "--debug:handoff-timeout", "2s")
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, o.HandoffTimeout)
	_, err = parseRun(t, "--debug:handoff-timeout=-1s")
	require.ErrorContains(t, err, "debug:handoff-timeout")
}

func TestDebugClockOffset(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		offset time.Duration
	}{
		{[]string{"--debug:clock-offset", "30s"}, 30 * time.Second},
		{[]string{"--debug:clock-offset=-30s"}, -30 * time.Second},
		{[]string{"--debug:clock-offset", "-1h"}, -time.Hour},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, err := parseRun(t, tc.args...)
			require.NoError(t, err)
			require.NotNil(t, o.Clock)
			before := time.Now()
			got := o.Clock.Now()
			after := time.Now()
			require.False(t, got.Before(before.Add(tc.offset)) || got.After(after.Add(tc.offset)),
				"clock reads %v, want real time %v..%v plus %v", got, before, after, tc.offset)
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv("SKYRING_DEBUG_CLOCK_OFFSET", "-2m")
		o, err := parseRun(t)
		require.NoError(t, err)
		require.InDelta(t, time.Now().Add(-2*time.Minute).UnixMilli(), o.Clock.Now().UnixMilli(), 1000)
	})
}

func TestDebugSlowWrites(t *testing.T) {
	const d = 30 * time.Millisecond
	o, err := parseRun(t, "--debug:slow-writes", d.String())
	require.NoError(t, err)
	require.NotNil(t, o.Faults.WrapStore)
	s := o.Faults.WrapStore(memstore.New())
	defer s.Close()
	start := time.Now()
	require.NoError(t, s.Put(context.Background(), storagetest.Timer("a", 1)))
	require.GreaterOrEqual(t, time.Since(start), d, "a write takes the extra time")
	start = time.Now()
	_, err = s.Get(context.Background(), "a")
	require.NoError(t, err)
	require.Less(t, time.Since(start), d, "a read does not")

	_, err = parseRun(t, "--debug:slow-writes=-1s")
	require.ErrorContains(t, err, "debug:slow-writes")
}

func TestDebugDropRelayReplies(t *testing.T) {
	o, err := parseRun(t, "--debug:drop-relay-replies", "1")
	require.NoError(t, err)
	require.NotNil(t, o.Faults.DropRelayReply)
	for range 100 {
		require.True(t, o.Faults.DropRelayReply(bus.OpCreate), "1 drops every reply")
	}

	o, err = parseRun(t, "--debug:drop-relay-replies", "0.5")
	require.NoError(t, err)
	dropped := 0
	for range 10000 {
		if o.Faults.DropRelayReply(bus.OpGet) {
			dropped++
		}
	}
	require.InDelta(t, 5000, dropped, 500, "about half")

	o, err = parseRun(t, "--debug:drop-relay-replies", "0")
	require.NoError(t, err)
	require.Nil(t, o.Faults.DropRelayReply, "0 drops nothing")

	for _, bad := range []string{"1.5", "-0.1", "NaN"} {
		_, err = parseRun(t, "--debug:drop-relay-replies", bad)
		require.ErrorContains(t, err, "debug:drop-relay-replies", bad)
	}
}

// The debug flags are hidden from --help, and marked as such where they
// are defined.
func TestDebugFlagsHidden(t *testing.T) {
	var out bytes.Buffer
	a := New()
	a.Stdout, a.Stderr = &out, &out
	require.Equal(t, 0, a.Main([]string{"skyring", "run", "--help"}))
	require.Contains(t, out.String(), "--debug:pprof", "the help was printed")
	for _, f := range debugFlags() {
		require.NotContains(t, out.String(), f.Names()[0], "hidden from --help")
		require.Contains(t, f.(cli.DocGenerationFlag).GetUsage(), "DEBUG/TESTING ONLY")
	}
}
