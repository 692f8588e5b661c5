// Package loadgen is Skyring's load tool, the engine behind `skyring bench`.
//
// It drives creates against one or more local Skyring nodes (over HTTP, or
// over NATS with [Config.NATSURL]) and runs its own callback sink, an HTTP
// server on 127.0.0.1 that records every delivery: which timer (from the
// x-skyring-timer-id header, or from the body), when it arrived, how many
// times. Every timer carries its own due instant (Unix ns) in its data, so
// lateness (arrival minus due) is exact and an early delivery, which Skyring
// promises never to make, is counted.
//
// Three schedules ([Mode]):
//
//   - [ModeCreate]: create throughput only. Timers are due far in the future
//     ([Config.Timeout], 1h by default) and are not awaited; they stay pending
//     on the targets.
//   - [ModeInstant]: N timers all due at the same absolute instant (start +
//     [Config.Lead]); then the tool waits for their deliveries.
//   - [ModeRate]: timers due at a steady [Config.Rate] per second for
//     [Config.Duration], each created [Config.Lead] ahead of its due instant.
//
// [Config.Floor] replaces Skyring by the tool itself: it holds the same
// callback requests in memory and sends them to the same sink at their due
// instants through an HTTP client set up like Skyring's http transport, which
// shows the machine's own delivery ceiling. [Config.Baseline] first runs the
// same create load against a trivial Go handler in a separate process
// ([TrivialCommand], re-executed from os.Executable) and reports the ratio.
//
// Safety: the tool only ever talks to loopback addresses (127.0.0.0/8, ::1 or
// localhost); any other target, NATS server or sink address is refused with
// [ErrNotLoopback]. Every loop is bounded by a count or a time and stops when
// the context is cancelled; every wait is bounded too ([Config.Wait] for the
// deliveries, [Config.RequestTimeout] for each request and setup step), and
// a wait for deliveries that ends with timers missing returns
// [ErrDeliveriesMissing] with the full report.
//
// This package is internal: its Go API serves the CLI and its tests and may
// change.
package loadgen
