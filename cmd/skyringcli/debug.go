package skyringcli

import (
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/urfave/cli/v2"

	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/internal/faultinject"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/wheel"
)

// Hidden fault-injection flags, for the fault-scenario tests
// (cmd/skyring/e2e_faults_*_test.go) and for trying a failure by hand. They
// are not listed by --help and never meant for production; see
// docs/development.md.
const (
	flagDebugClockOffset = "debug:clock-offset"
	flagDebugSlowWrites  = "debug:slow-writes"
	flagDebugDropReplies = "debug:drop-relay-replies"
	flagDebugHandoff     = "debug:handoff-timeout"
)

func debugFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: flagDebugClockOffset, Hidden: true, EnvVars: env(flagDebugClockOffset),
			Usage: "DEBUG/TESTING ONLY: the node's clock reads real time plus this (may be negative), to test clock skew between nodes"},
		&cli.DurationFlag{Name: flagDebugSlowWrites, Hidden: true, EnvVars: env(flagDebugSlowWrites),
			Usage: "DEBUG/TESTING ONLY: every storage write (put, delete, meta) takes this much longer: a slow disk"},
		&cli.Float64Flag{Name: flagDebugDropReplies, Hidden: true, EnvVars: env(flagDebugDropReplies),
			Usage: "DEBUG/TESTING ONLY: drop this fraction (0 to 1) of the replies to commands other nodes relay here, after carrying them out: lost replies"},
		&cli.DurationFlag{Name: flagDebugHandoff, Hidden: true, EnvVars: env(flagDebugHandoff),
			Usage: "DEBUG/TESTING ONLY: bound on one hand-off message (node.Options.HandoffTimeout, default 10s), so that a fault test can outlast it quickly"},
	}
}

// debugOptions applies the fault-injection flags to o.
func debugOptions(c *cli.Context, o *node.Options) error {
	if d := c.Duration(flagDebugClockOffset); d != 0 {
		o.Clock = wheel.OffsetClock(wheel.SystemClock(), d)
	}
	switch d := c.Duration(flagDebugSlowWrites); {
	case d < 0:
		return fmt.Errorf("--%s must not be negative", flagDebugSlowWrites)
	case d > 0:
		o.Faults.WrapStore = func(s storage.Store) storage.Store { return faultinject.SlowWrites(s, d) }
	}
	o.HandoffTimeout = c.Duration(flagDebugHandoff) // 0: the default
	if o.HandoffTimeout < 0 {
		return fmt.Errorf("--%s must not be negative", flagDebugHandoff)
	}
	switch p := c.Float64(flagDebugDropReplies); {
	case !(p >= 0 && p <= 1): // NaN too
		return fmt.Errorf("--%s must be a fraction between 0 and 1, got %v", flagDebugDropReplies, p)
	case p > 0:
		o.Faults.DropRelayReply = func(bus.Op) bool { return rand.Float64() < p }
	}
	return nil
}

// warnDebug logs the fault-injection flags that are set, so that no one
// mistakes such a node for a healthy one.
func warnDebug(c *cli.Context, logger *slog.Logger) {
	var set []any
	for _, f := range []string{flagDebugClockOffset, flagDebugSlowWrites, flagDebugDropReplies, flagDebugHandoff} {
		if c.IsSet(f) {
			set = append(set, f, c.Value(f))
		}
	}
	if len(set) > 0 {
		logger.Warn("fault injection is on (debug/testing flags)", set...)
	}
}
