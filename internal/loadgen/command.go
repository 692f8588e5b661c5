package loadgen

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// Command is `skyring bench`: it builds a Config from its flags, runs it with
// progress on stderr, and prints the human summary then, as the very last
// line on stdout, the Result as one JSON line.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load local Skyring nodes and measure creates and delivery lateness",
		Description: `Creates timers on one or more local Skyring nodes and receives their callbacks on
its own sink (127.0.0.1), then reports create throughput and latency, and for the
instant and rate modes the deliveries: missing, duplicates, early (must be 0) and
lateness percentiles. Only loopback targets are accepted.

Modes:
  create   create throughput only; timers are due in --timeout (1h) and stay pending
  instant  -n timers all due at start + --lead, then wait for them
  rate     timers due --rate per second for -d, each created --lead ahead

--floor makes the tool deliver the same callbacks itself (no Skyring): the
machine's own delivery ceiling. --baseline first runs the same create load
against a trivial Go handler in a separate process and reports the ratio.

The last line on stdout is the report as one JSON object. If timers are still
missing when --wait ends, the report is printed and the command fails.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "url", Value: cli.NewStringSlice(DefaultTarget), Usage: "base URL of a Skyring node (repeatable; creates go round-robin)"},
			&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Value: DefaultConcurrency, Usage: "create workers"},
			&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Usage: "create phase length (create, instant) or span of due instants (rate); default 10s when -n is not given"},
			&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Usage: "number of timers (instant default 10000)"},
			&cli.StringFlag{Name: "mode", Value: string(ModeCreate), Usage: "create, instant or rate"},
			&cli.Float64Flag{Name: "rate", Value: DefaultRate, Usage: "timers due per second (rate mode)"},
			&cli.DurationFlag{Name: "lead", Value: DefaultLead, Usage: "how far ahead of its due instant a timer is created"},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for deliveries after the creates (default lead + 30s)"},
			&cli.DurationFlag{Name: "settle", Value: DefaultSettle, Usage: "how long to listen for duplicates once all timers arrived"},
			&cli.DurationFlag{Name: "timeout", Value: DefaultTimeout, Usage: "timeout of the timers of create mode"},
			&cli.StringFlag{Name: "data", Value: DataString, Usage: `timer data: "string" ("<id>|<dueUnixNs>") or "object"`},
			&cli.IntFlag{Name: "data-pad", Usage: "padding bytes added to each timer's data"},
			&cli.StringFlag{Name: "sink-addr", Value: DefaultSinkAddr, Usage: "callback sink listen address (loopback)"},
			&cli.DurationFlag{Name: "request-timeout", Value: DefaultRequestTimeout, Usage: "bound on each create request and floor delivery"},
			&cli.BoolFlag{Name: "floor", Usage: "deliver the callbacks from the tool itself instead of Skyring (instant, rate)"},
			&cli.IntFlag{Name: "floor-conns", Value: DefaultFloorConns, Usage: "floor connections per host and delivery workers"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"SKYRING_BENCH_TOKEN"}, Usage: "API token of a node run with --http:token (HTTP bearer, NATS token)"},
			&cli.StringFlag{Name: "nats", Usage: "create over NATS at this (loopback) URL instead of HTTP"},
			&cli.StringFlag{Name: "nats-mode", Value: NATSRequest, Usage: "request (await each reply) or publish (fire-and-forget)"},
			&cli.StringFlag{Name: "prefix", Value: DefaultPrefix, Usage: "NATS subject prefix"},
			&cli.IntFlag{Name: "nats-conns", Value: DefaultNATSConns, Usage: "NATS connections shared by the workers"},
			&cli.BoolFlag{Name: "cleanup", Usage: "once the run is over, cancel every timer it created that is still pending"},
			&cli.BoolFlag{Name: "baseline", Usage: "first run the same create load against a trivial handler and report the ratio"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("bench takes no arguments, got %q", c.Args().Slice())
			}
			cfg := Config{
				Targets:        c.StringSlice("url"),
				Concurrency:    c.Int("concurrency"),
				Duration:       c.Duration("duration"),
				Count:          c.Int("count"),
				Mode:           Mode(c.String("mode")),
				Rate:           c.Float64("rate"),
				Lead:           c.Duration("lead"),
				Wait:           c.Duration("wait"),
				Settle:         c.Duration("settle"),
				Timeout:        c.Duration("timeout"),
				Data:           c.String("data"),
				DataPad:        c.Int("data-pad"),
				SinkAddr:       c.String("sink-addr"),
				RequestTimeout: c.Duration("request-timeout"),
				Floor:          c.Bool("floor"),
				FloorConns:     c.Int("floor-conns"),
				NATSURL:        c.String("nats"),
				Token:          c.String("token"),
				NATSMode:       c.String("nats-mode"),
				Prefix:         c.String("prefix"),
				NATSConns:      c.Int("nats-conns"),
				Cleanup:        c.Bool("cleanup"),
				Baseline:       c.Bool("baseline"),
			}
			res, err := Run(c.Context, cfg, c.App.ErrWriter)
			if res != nil {
				if werr := res.WriteText(c.App.Writer); werr != nil && err == nil {
					err = werr
				}
				if werr := res.WriteJSON(c.App.Writer); werr != nil && err == nil {
					err = werr
				}
			}
			return err
		},
	}
}
