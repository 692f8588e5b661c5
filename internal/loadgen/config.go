package loadgen

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/skyring/skyring"
)

// Mode is a timer schedule.
type Mode string

// The schedules.
const (
	// ModeCreate measures create throughput only; timers are due far in the
	// future and not awaited.
	ModeCreate Mode = "create"
	// ModeInstant creates Count timers all due at the same instant, start +
	// Lead, and awaits their deliveries.
	ModeInstant Mode = "instant"
	// ModeRate creates timers due Rate per second for Duration, each Lead
	// ahead of its due instant, and awaits their deliveries.
	ModeRate Mode = "rate"
)

// awaited reports whether the mode waits for deliveries.
func (m Mode) awaited() bool { return m == ModeInstant || m == ModeRate }

// NATS create modes.
const (
	// NATSRequest sends each create as a request and awaits the reply; a
	// status other than 201 is an error.
	NATSRequest = "request"
	// NATSPublish publishes each create without a reply subject
	// (fire-and-forget) and flushes at the end.
	NATSPublish = "publish"
)

// Timer data shapes.
const (
	// DataString sends data as the string "<id>|<dueUnixNs>".
	DataString = "string"
	// DataObject sends data as the object {"id":"<id>","due":<dueUnixNs>}.
	DataObject = "object"
)

// Defaults applied by Run to zero fields of Config.
const (
	DefaultTarget         = "http://127.0.0.1:3000"
	DefaultConcurrency    = 64
	DefaultDuration       = 10 * time.Second // when neither Count nor Duration is set
	DefaultInstantCount   = 10000
	DefaultRate           = 1000.0
	DefaultLead           = 10 * time.Second
	DefaultWaitExtra      = 30 * time.Second // Wait defaults to Lead + this
	DefaultSettle         = 500 * time.Millisecond
	DefaultTimeout        = time.Hour
	DefaultSinkAddr       = "127.0.0.1:0"
	DefaultFloorConns     = 256
	DefaultPrefix         = skyring.DefaultPrefix
	DefaultNATSConns      = 1
	DefaultRequestTimeout = 30 * time.Second

	// MaxTimers bounds the timers one run may plan (memory: a few dozen
	// bytes each).
	MaxTimers = 20_000_000
)

// Sentinel errors.
var (
	// ErrNotLoopback: a target, NATS server or sink address is not on this
	// machine's loopback. The tool never loads anything else.
	ErrNotLoopback = errors.New("loadgen: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed")
	// ErrInvalidConfig: a Config field is out of range or contradicts
	// another.
	ErrInvalidConfig = errors.New("loadgen: invalid configuration")
	// ErrDeliveriesMissing: the wait for deliveries ([Config.Wait]) ended
	// with created timers still missing. Run returns it with the full
	// report.
	ErrDeliveriesMissing = errors.New("loadgen: deliveries missing")
)

// Config is one bench run. Zero fields take the Default* values.
type Config struct {
	// Targets are the base URLs of the Skyring nodes (http://host:port);
	// creates go to them round-robin. Default DefaultTarget.
	Targets []string
	// Concurrency is the number of create workers. Default 64.
	Concurrency int
	// Duration bounds the create phase (create, instant) or sets the span of
	// due instants (rate). Count bounds the number of timers. Whichever ends
	// first ends the run; with neither set, Duration is 10s (instant mode
	// sets Count to 10000 instead).
	Duration time.Duration
	Count    int
	// Mode is the schedule. Default ModeCreate.
	Mode Mode
	// Rate is the number of timers due per second in ModeRate. Default 1000.
	Rate float64
	// Lead is how far ahead of its due instant a timer is created (instant:
	// all timers are due at start + Lead). Default 10s.
	Lead time.Duration
	// Wait bounds the wait for deliveries after the create phase ends; a
	// run that reaches it with timers missing returns ErrDeliveriesMissing.
	// Default Lead + 30s.
	Wait time.Duration
	// Settle is how long the tool keeps listening for duplicates once every
	// timer has arrived. Default 500ms.
	Settle time.Duration
	// Timeout is the timeout of the timers of ModeCreate. Default 1h.
	Timeout time.Duration
	// Data is the shape of the timers' data: DataString (default) or
	// DataObject.
	Data string
	// DataPad adds this many padding bytes to each timer's data (to measure
	// memory with realistic payloads). Default 0.
	DataPad int
	// SinkAddr is the callback sink's listen address; it must be loopback.
	// Default 127.0.0.1:0.
	SinkAddr string
	// RequestTimeout bounds each create request and each floor delivery,
	// and each step of setting up: the targets' preflight, connecting to
	// NATS, the baseline target's start. In NATS publish mode, a publish
	// not stored within RequestTimeout of the previous store counts as
	// dropped. Default 30s.
	RequestTimeout time.Duration

	// Floor makes the tool deliver the callbacks itself instead of creating
	// timers (instant and rate modes only).
	Floor bool
	// FloorConns is the floor client's MaxConnsPerHost and its number of
	// delivery workers. Default 256.
	FloorConns int

	// Token, if set, is the API token: sent as "Authorization: Bearer" over
	// HTTP, and as the NATS connection's token.
	Token string

	// NATSURL, if set, sends creates over NATS to this server instead of
	// HTTP to Targets.
	NATSURL string
	// NATSMode is NATSRequest (default) or NATSPublish.
	NATSMode string
	// Prefix is the NATS subject prefix. Default "skyring".
	Prefix string
	// NATSConns is the number of NATS connections the workers share.
	// Default 1.
	NATSConns int

	// Cleanup cancels, once the run is over, every timer it created that
	// is still pending (Result.CleanedUp tells how many).
	Cleanup bool

	// Baseline first runs the same create load (unpaced, over HTTP) against
	// a trivial handler and reports both rates and their ratio.
	Baseline bool
	// BaselineURL is the base URL of an already running trivial target
	// (tests use ServeTrivial). Empty: start one in a separate process.
	BaselineURL string
	// BaselineCommand is the command that starts the trivial target process;
	// "--addr=127.0.0.1:0" and "--exit-on-eof" are appended. Default:
	// os.Executable() followed by "trivial-target".
	BaselineCommand []string
}

func (c Config) withDefaults() Config {
	if len(c.Targets) == 0 {
		c.Targets = []string{DefaultTarget}
	}
	if c.Mode == "" {
		c.Mode = ModeCreate
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	switch c.Mode {
	case ModeInstant:
		if c.Count == 0 {
			c.Count = DefaultInstantCount
		}
	default:
		if c.Count == 0 && c.Duration == 0 {
			c.Duration = DefaultDuration
		}
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Lead == 0 {
		c.Lead = DefaultLead
	}
	if c.Wait == 0 {
		c.Wait = c.Lead + DefaultWaitExtra
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Data == "" {
		c.Data = DataString
	}
	if c.SinkAddr == "" {
		c.SinkAddr = DefaultSinkAddr
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.FloorConns == 0 {
		c.FloorConns = DefaultFloorConns
	}
	if c.NATSMode == "" {
		c.NATSMode = NATSRequest
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.NATSConns == 0 {
		c.NATSConns = DefaultNATSConns
	}
	return c
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// validate checks a Config that went through withDefaults.
func (c Config) validate() error {
	switch c.Mode {
	case ModeCreate, ModeInstant, ModeRate:
	default:
		return invalidf("unknown mode %q (want create, instant or rate)", c.Mode)
	}
	switch {
	case c.Concurrency < 1:
		return invalidf("concurrency must be at least 1")
	case c.Count < 0:
		return invalidf("count must not be negative")
	case c.Duration < 0:
		return invalidf("duration must not be negative")
	case c.Lead < 0, c.Wait < 0, c.Settle < 0, c.Timeout < 0, c.RequestTimeout < 0:
		return invalidf("durations must not be negative")
	case c.Mode == ModeRate && (c.Rate <= 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate)):
		return invalidf("rate must be a positive number")
	case c.Mode == ModeCreate && c.Timeout < time.Millisecond:
		return invalidf("timeout must be at least 1ms")
	case c.FloorConns < 1:
		return invalidf("floor-conns must be at least 1")
	case c.NATSConns < 1:
		return invalidf("nats-conns must be at least 1")
	}
	if c.Mode == ModeRate && c.Duration == 0 && c.Count == 0 {
		return invalidf("rate mode needs a duration or a count")
	}
	if n := c.planned(); n > MaxTimers {
		return invalidf("%d timers planned, more than %d", n, MaxTimers)
	} else if n < 1 && c.Mode.awaited() {
		return invalidf("no timer planned (rate x duration is below 1)")
	}
	if c.Data != DataString && c.Data != DataObject {
		return invalidf("unknown data shape %q (want string or object)", c.Data)
	}
	if c.NATSMode != NATSRequest && c.NATSMode != NATSPublish {
		return invalidf("unknown nats mode %q (want request or publish)", c.NATSMode)
	}
	if c.Floor && !c.Mode.awaited() {
		return invalidf("floor needs mode instant or rate")
	}
	if c.Floor && c.NATSURL != "" {
		return invalidf("floor and nats exclude each other")
	}
	if c.Floor && c.Baseline {
		return invalidf("floor and baseline exclude each other")
	}
	if strings.ContainsAny(c.Prefix, " \t\r\n*>") {
		return invalidf("invalid NATS subject prefix %q", c.Prefix)
	}
	for _, t := range c.Targets {
		if _, err := parseTarget(t); err != nil {
			return err
		}
	}
	if c.NATSURL != "" {
		if err := checkNATSURL(c.NATSURL); err != nil {
			return err
		}
	}
	if c.BaselineURL != "" {
		if _, err := parseTarget(c.BaselineURL); err != nil {
			return err
		}
	}
	if err := checkLoopbackHostPort(c.SinkAddr); err != nil {
		return fmt.Errorf("sink address: %w", err)
	}
	return nil
}

// planned is the number of timers the run plans, 0 for unbounded (create
// mode bounded by time only).
func (c Config) planned() int {
	switch c.Mode {
	case ModeRate:
		n := 0
		if c.Duration > 0 {
			f := c.Rate * c.Duration.Seconds()
			if f > MaxTimers+1 {
				f = MaxTimers + 1
			}
			n = int(f)
		}
		if c.Count > 0 && (n == 0 || c.Count < n) {
			n = c.Count
		}
		return n
	default:
		return c.Count
	}
}

// isLoopbackHost reports whether host (no port, no brackets) names this
// machine's loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseTarget checks a base URL and returns the URL of its POST /timer.
func parseTarget(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", invalidf("target %q: %v", raw, err)
	}
	if u.Scheme != "http" {
		return "", invalidf("target %q: scheme must be http", raw)
	}
	if u.Host == "" {
		return "", invalidf("target %q: no host", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("target %q: %w", raw, ErrNotLoopback)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/timer"
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String(), nil
}

// checkNATSURL checks every server of a comma-separated NATS URL list.
func checkNATSURL(raw string) error {
	for _, s := range strings.Split(raw, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return invalidf("nats url %q: not a URL", raw)
		}
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("nats url %q: %w", raw, ErrNotLoopback)
		}
	}
	return nil
}

func checkLoopbackHostPort(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return invalidf("address %q: %v", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("address %q: %w", addr, ErrNotLoopback)
	}
	return nil
}
