package skyringcli

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

func TestCheckDurationArgs(t *testing.T) {
	t.Parallel()
	flags := withConfigFile([]cli.Flag{
		&cli.DurationFlag{Name: "delivery:timeout", EnvVars: []string{"SKYRING_DELIVERY_TIMEOUT"}},
		&cli.StringFlag{Name: "node:id"},
	})
	noEnv := func(string) (string, bool) { return "", false }
	for _, ok := range [][]string{
		{"--delivery:timeout", "10s"}, {"--delivery:timeout=1m30s"}, {"-delivery:timeout", "0"},
		{"--node:id", "10"}, {"--", "--delivery:timeout", "10"}, {"--delivery:timeout"},
	} {
		require.NoError(t, checkDurationArgs(flags, ok, noEnv), "%v", ok)
	}
	for _, bad := range [][]string{{"--delivery:timeout", "10"}, {"--delivery:timeout=ten"}, {"-delivery:timeout", "5"}} {
		err := checkDurationArgs(flags, bad, noEnv)
		require.ErrorIs(t, err, ErrDurationUnit, "%v", bad)
		require.Contains(t, err.Error(), "--delivery:timeout")
		require.Contains(t, err.Error(), "use a unit, e.g. 10s")
	}
	env := func(k string) (string, bool) { return "10", k == "SKYRING_DELIVERY_TIMEOUT" }
	require.EqualError(t, checkDurationArgs(flags, nil, env), `SKYRING_DELIVERY_TIMEOUT="10" (--delivery:timeout): use a unit, e.g. 10s, 500ms or 1m30s`)
}

func TestCheckDuration(t *testing.T) {
	t.Parallel()
	for _, v := range []any{"10s", "0", 0, int64(0), "1h"} {
		require.NoError(t, checkDuration(v), "%v", v)
	}
	for _, v := range []any{"10", 10, int64(5), 1.5, true, "soon"} {
		require.ErrorIs(t, checkDuration(v), ErrDurationUnit, "%v", v)
	}
}
