// Package skyringcli is the `skyring` command line: flags (each also an
// environment variable SKYRING_<NAME>), the run, version and bench commands,
// signal handling and wiring. It holds no logic of its own: `run` builds
// node.Options from the flags and runs a node until SIGINT or SIGTERM.
//
// It is a package, not only a main, so that a custom binary can add its own
// transports and storage backends before the CLI runs:
//
//	app := skyringcli.New()
//	_ = app.Transports.Add("fizzbuzz", newFizzBuzz)
//	os.Exit(app.Main(os.Args))
package skyringcli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/internal/loadgen"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
)

// App is the skyring command line with the transports and storage backends
// it can enable.
type App struct {
	// Transports are the compiled-in transports --transport can enable.
	Transports *transports.Catalog
	// Storage are the backends --storage:backend can select.
	Storage *storage.Registry
	// Stdout and Stderr default to the process's.
	Stdout, Stderr io.Writer
}

// New returns the CLI with the built-in transports and storage backends.
func New() *App {
	return &App{
		Transports: node.DefaultTransports(),
		Storage:    node.DefaultStorage(),
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
	}
}

// Main runs the CLI with args (os.Args) and returns the exit code.
func (a *App) Main(args []string) int { return a.MainContext(context.Background(), args) }

// MainContext is Main with a context: cancelling it stops a running node as
// SIGINT or SIGTERM do.
func (a *App) MainContext(ctx context.Context, args []string) int {
	args, extra := splitStorageExtras(args)
	app := a.cliApp(extra)
	if len(args) > 1 && args[1] == "run" {
		if err := checkDurationArgs(app.Command("run").Flags, args[2:], os.LookupEnv); err != nil {
			fmt.Fprintf(a.Stderr, "skyring: %v\n", err)
			return 1
		}
	}
	if err := app.RunContext(ctx, args); err != nil {
		fmt.Fprintf(a.Stderr, "skyring: %v\n", err)
		return 1
	}
	return 0
}

func env(name string) []string {
	r := strings.NewReplacer(":", "_", "-", "_")
	return []string{"SKYRING_" + strings.ToUpper(r.Replace(name))}
}

func (a *App) cliApp(storageExtra map[string][]string) *cli.App {
	return &cli.App{
		Name:      "skyring",
		Usage:     "a distributed, durable timer service: setTimeout as a service",
		Version:   node.Version,
		Writer:    a.Stdout,
		ErrWriter: a.Stderr,
		Commands: []*cli.Command{
			a.runCommand(storageExtra),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					cli.ShowVersion(c) // the same line as --version
					return nil
				},
			},
			a.timerCommand(), a.clusterCommand(),
			loadgen.Command(),
			loadgen.TrivialCommand(),
			a.probeCommand(),
		},
	}
}

// Flag names keep the original's.
const (
	flagPort               = "port"
	flagSeeds              = "seeds"
	flagChannelHost        = "channel:host"
	flagChannelPort        = "channel:port"
	flagNATSHosts          = "nats:hosts"
	flagNATSPort           = "nats:port"
	flagNATSPrefix         = "nats:prefix"
	flagNATSCreds          = "nats:creds"
	flagNATSMaxConns       = "nats:max-connections"
	flagNATSNkey           = "nats:nkey"
	flagNATSTLSCA          = "nats:tls-ca"
	flagNATSTLSCert        = "nats:tls-cert"
	flagNATSTLSKey         = "nats:tls-key"
	flagChannelSecret      = "channel:secret"
	flagChannelSecretFile  = "channel:secret-file"
	flagChannelTLSCert     = "channel:tls-cert"
	flagChannelTLSKey      = "channel:tls-key"
	flagChannelTLSCA       = "channel:tls-ca"
	flagTimerMax           = "timer:max"
	flagTimerRetention     = "timer:retention"
	flagTimerMaxPending    = "timer:max-pending"
	flagNATSCallbackAllow  = "nats:callback-allow"
	flagStorageBackend     = "storage:backend"
	flagStoragePath        = "storage:path"
	flagStorageNoSync      = "storage:nosync"
	flagTransport          = "transport"
	flagLogLevel           = "log:level"
	flagLogFormat          = "log:format"
	flagDeliveryTimeout    = "delivery:timeout"
	flagDeliveryWorkers    = "delivery:workers"
	flagDeliveryAttempts   = "delivery:attempts"
	flagDeliveryMinBackoff = "delivery:min-backoff"
	flagDeliveryMaxBackoff = "delivery:max-backoff"
	flagDeliveryPerDest    = "delivery:per-destination"
	flagBreakerFailures    = "delivery:breaker-failures"
	flagBreakerOpen        = "delivery:breaker-open"
	flagBreakerProbes      = "delivery:breaker-probes"
	flagNodeID             = "node:id"
	flagHeartbeat          = "member:heartbeat"
	flagMemberTimeout      = "member:timeout"
	flagShutdownTimeout    = "shutdown:timeout"
	flagShutdownDrain      = "shutdown:drain"
	flagMetrics            = "metrics"
	flagMaxBody            = "http:max-body"
	flagHTTPToken          = "http:token"
	flagHTTPTokenFile      = "http:token-file"
	flagHTTPAllowOrigin    = "http:allow-origin"
	flagCallbackDeny       = "callback:deny"
	flagCallbackAllow      = "callback:allow"
	flagHTTPTLSCert        = "http:tls-cert"
	flagHTTPTLSKey         = "http:tls-key"
	flagPprof              = "debug:pprof"
	flagWebhookSecret      = "webhook:secret"
)

func (a *App) runCommand(storageExtra map[string][]string) *cli.Command {
	extra := maps.Clone(storageExtra)
	if extra == nil {
		extra = map[string][]string{}
	}
	cmd := &cli.Command{
		Name:  "run",
		Usage: "run a Skyring node",
		Description: "With no flags: HTTP on :3000, an embedded NATS server on 127.0.0.1:4222 whose cluster\n" +
			"port is 127.0.0.1:3455, durable goleveldb storage in the user's data directory.",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: flagPort, Aliases: []string{"p"}, Value: skyring.DefaultHTTPPort, EnvVars: env(flagPort), Usage: "HTTP port (-1 picks a free one)"},
			&cli.StringFlag{Name: "host", Value: "", EnvVars: env("host"), Usage: "HTTP listen host (empty: every interface)"},
			&cli.StringSliceFlag{Name: flagSeeds, Aliases: []string{"s"}, EnvVars: env(flagSeeds), Usage: "host:port of a seed node's cluster (channel) port; repeatable (default 127.0.0.1:3455 and 127.0.0.1:3456)"},
			&cli.StringFlag{Name: flagChannelHost, Value: node.DefaultChannelHost, EnvVars: env(flagChannelHost), Usage: "this node's cluster host"},
			&cli.IntFlag{Name: flagChannelPort, Value: node.DefaultChannelPort, EnvVars: env(flagChannelPort), Usage: "this node's cluster port (-1 picks a free one)"},
			&cli.StringFlag{Name: flagNATSHosts, EnvVars: env(flagNATSHosts), Usage: "comma-separated external NATS servers; without it the node embeds a NATS server"},
			&cli.StringFlag{Name: flagChannelSecret, EnvVars: env(flagChannelSecret), Usage: "cluster secret, the same on every node: the embedded NATS servers refuse routes without it (prefer the env var or --channel:secret-file to keep it out of ps)"},
			&cli.StringFlag{Name: flagChannelSecretFile, EnvVars: env(flagChannelSecretFile), Usage: "file holding the cluster secret (its first line)"},
			&cli.StringFlag{Name: flagChannelTLSCert, EnvVars: env(flagChannelTLSCert), Usage: "PEM certificate: routes between the embedded NATS servers use mutual TLS (with --channel:tls-key and --channel:tls-ca)"},
			&cli.StringFlag{Name: flagChannelTLSKey, EnvVars: env(flagChannelTLSKey), Usage: "PEM private key of --channel:tls-cert"},
			&cli.StringFlag{Name: flagChannelTLSCA, EnvVars: env(flagChannelTLSCA), Usage: "PEM CA that verifies the other nodes' route certificates"},
			&cli.IntFlag{Name: flagNATSMaxConns, Value: bus.DefaultMaxConnections, EnvVars: env(flagNATSMaxConns), Usage: "most client connections the embedded NATS server takes"},
			&cli.StringFlag{Name: flagNATSCreds, EnvVars: env(flagNATSCreds), Usage: "external NATS: the node's JWT credentials (.creds) file"},
			&cli.StringFlag{Name: flagNATSNkey, EnvVars: env(flagNATSNkey), Usage: "external NATS: the node's nkey seed file"},
			&cli.StringFlag{Name: flagNATSTLSCA, EnvVars: env(flagNATSTLSCA), Usage: "external NATS: PEM CA that verifies the servers"},
			&cli.StringFlag{Name: flagNATSTLSCert, EnvVars: env(flagNATSTLSCert), Usage: "external NATS: PEM client certificate (with --nats:tls-key)"},
			&cli.StringFlag{Name: flagNATSTLSKey, EnvVars: env(flagNATSTLSKey), Usage: "external NATS: PEM private key of --nats:tls-cert"},
			&cli.IntFlag{Name: flagNATSPort, DefaultText: "4222 + (channel:port - 3455)", EnvVars: env(flagNATSPort), Usage: "client port of the embedded NATS server (-1 picks a free one)"},
			&cli.StringFlag{Name: flagNATSPrefix, Value: skyring.DefaultPrefix, EnvVars: env(flagNATSPrefix), Usage: "subject prefix of the NATS API and events"},
			&cli.Int64Flag{Name: flagTimerMax, Value: skyring.DefaultMaxTimeout, EnvVars: env(flagTimerMax), Usage: "largest accepted timeout in ms"},
			&cli.IntFlag{Name: flagTimerMaxPending, EnvVars: env(flagTimerMaxPending), DefaultText: "0: unlimited", Usage: "most timers this node holds pending; a create beyond it gets 503 (hand-offs from other nodes are let through)"},
			&cli.StringSliceFlag{Name: flagNATSCallbackAllow, EnvVars: env(flagNATSCallbackAllow), Usage: "a subject pattern (NATS wildcards * and >) nats callbacks may target; repeatable; when set, a nats callback matching none gets 400 (default: any subject but the node's own and the server's)"},
			&cli.DurationFlag{Name: flagTimerRetention, Value: node.DefaultTimerRetention, EnvVars: env(flagTimerRetention), Usage: "how long GET answers for a delivered or cancelled timer (0: not at all; failed timers stay until retried or dropped)"},
			&cli.StringFlag{Name: flagStorageBackend, Value: node.DefaultStorageBackend, EnvVars: env(flagStorageBackend), Usage: "storage backend: leveldb (leveldown), memory (memdown), jetstream (a replicated stream the nodes share; --storage:replicas 1|3), or a custom one"},
			&cli.StringFlag{Name: flagStoragePath, EnvVars: env(flagStoragePath), DefaultText: "$XDG_DATA_HOME/skyring/<channel:host>-<channel:port>", Usage: "data directory"},
			&cli.BoolFlag{Name: flagStorageNoSync, EnvVars: env(flagStorageNoSync), Usage: "acknowledge writes before they are fsynced (faster; a power loss may lose acknowledged timers)"},
			&cli.StringSliceFlag{Name: flagTransport, Aliases: []string{"t"}, EnvVars: append(env(flagTransport), "transport"), Usage: "enable a compiled-in transport by name; repeatable (default http and nats)"},
			&cli.StringFlag{Name: flagLogLevel, Value: "info", EnvVars: env(flagLogLevel), Usage: "debug, info, warn or error (DEBUG=skyring:* also turns on debug)"},
			&cli.StringFlag{Name: flagLogFormat, Value: logFormatText, EnvVars: env(flagLogFormat), Usage: "log format: text (logfmt) or json (one object per line)"},
			&cli.DurationFlag{Name: flagDeliveryTimeout, Value: node.DefaultDeliveryTimeout, EnvVars: env(flagDeliveryTimeout), Usage: "timeout of one delivery"},
			&cli.IntFlag{Name: flagDeliveryWorkers, Value: node.DefaultDeliveryWorkers, EnvVars: env(flagDeliveryWorkers), Usage: "deliveries under way at once"},
			&cli.IntFlag{Name: flagDeliveryAttempts, Value: node.DefaultDeliveryAttempts, EnvVars: env(flagDeliveryAttempts), Usage: "delivery attempts per timer, the first included, unless its callback.retry says otherwise (1: no retry)"},
			&cli.DurationFlag{Name: flagDeliveryMinBackoff, Value: node.DefaultDeliveryMinBackoff, EnvVars: env(flagDeliveryMinBackoff), Usage: "shortest wait before a retry"},
			&cli.DurationFlag{Name: flagDeliveryMaxBackoff, Value: node.DefaultDeliveryMaxBackoff, EnvVars: env(flagDeliveryMaxBackoff), Usage: "longest wait before a retry"},
			&cli.IntFlag{Name: flagDeliveryPerDest, EnvVars: env(flagDeliveryPerDest), DefaultText: "max(4, workers/8)", Usage: "delivery attempts in flight to one destination (http: host:port); fired timers beyond it wait without holding a worker"},
			&cli.IntFlag{Name: flagBreakerFailures, Value: node.DefaultBreakerFailures, EnvVars: env(flagBreakerFailures), Usage: "consecutive failed attempts to a destination that open its circuit breaker (its timers are then put off, no attempt counted)"},
			&cli.DurationFlag{Name: flagBreakerOpen, Value: node.DefaultBreakerOpen, EnvVars: env(flagBreakerOpen), Usage: "how long a destination's breaker stays open before it lets probes through"},
			&cli.IntFlag{Name: flagBreakerProbes, Value: node.DefaultBreakerProbes, EnvVars: env(flagBreakerProbes), Usage: "attempts a half-open breaker lets through; a success closes it"},
			&cli.StringFlag{Name: flagNodeID, EnvVars: env(flagNodeID), Usage: "node identity (default: the one stored with the data, or a new one)"},
			&cli.DurationFlag{Name: flagHeartbeat, Value: node.DefaultHeartbeatInterval, EnvVars: env(flagHeartbeat), Usage: "membership heartbeat interval"},
			&cli.DurationFlag{Name: flagMemberTimeout, Value: node.DefaultMemberTimeout, EnvVars: env(flagMemberTimeout), Usage: "drop a member not heard from for this long"},
			&cli.DurationFlag{Name: flagShutdownTimeout, Value: node.DefaultShutdownTimeout, EnvVars: env(flagShutdownTimeout), Usage: "bound on a graceful stop (hand-off, deliveries under way)"},
			&cli.DurationFlag{Name: flagShutdownDrain, EnvVars: env(flagShutdownDrain), Usage: "at a stop, keep serving HTTP this long with /readyz answering 503 before the HTTP API stops (e.g. 5s behind a load balancer)"},
			&cli.BoolFlag{Name: flagMetrics, Value: true, EnvVars: env(flagMetrics), Usage: "Prometheus metrics at GET /metrics; --metrics=false turns the instrumentation off"},
			&cli.StringFlag{Name: flagPprof, EnvVars: env(flagPprof), Usage: "serve Go's net/http/pprof profiles on this (loopback) address, e.g. 127.0.0.1:6060"},
			&cli.StringSliceFlag{Name: flagWebhookSecret, EnvVars: env(flagWebhookSecret), Usage: "sign every http delivery (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) with this secret, whsec_<base64 of at least 24 bytes>; repeatable or comma-separated for a rotation, the current one first"},
			&cli.Int64Flag{Name: flagMaxBody, Value: skyring.DefaultMaxBodyBytes, EnvVars: env(flagMaxBody), Usage: "largest request body in bytes"},
			&cli.StringSliceFlag{Name: flagHTTPToken, EnvVars: env(flagHTTPToken), Usage: "require this bearer token on the HTTP API (/ping stays open); repeatable, for a rotation"},
			&cli.StringFlag{Name: flagHTTPTokenFile, EnvVars: env(flagHTTPTokenFile), Usage: "file of bearer tokens, one per line (re-read at start), added to --http:token"},
			&cli.StringFlag{Name: flagHTTPTLSCert, EnvVars: env(flagHTTPTLSCert), Usage: "PEM certificate (chain) file: serve the HTTP API over TLS (with --http:tls-key)"},
			&cli.StringFlag{Name: flagHTTPTLSKey, EnvVars: env(flagHTTPTLSKey), Usage: "PEM private key file of --http:tls-cert"},
			&cli.StringSliceFlag{Name: flagCallbackDeny, EnvVars: env(flagCallbackDeny), Usage: "CIDR, address or host pattern (*.internal) no http callback may reach, checked on the resolved address at dial time; repeatable; link-local (cloud metadata) is always denied unless --callback:allow names it"},
			&cli.StringSliceFlag{Name: flagCallbackAllow, EnvVars: env(flagCallbackAllow), Usage: "when set, http callbacks may reach only these CIDRs, addresses or host patterns; repeatable"},
			&cli.StringSliceFlag{Name: flagHTTPAllowOrigin, EnvVars: env(flagHTTPAllowOrigin), Usage: "browser origin (e.g. https://app.example.com) whose cross-site requests the API serves; repeatable; \"*\" allows any; other origins get 403"},
		}, debugFlags()...),
	}
	cmd.Flags = withConfigFile(cmd.Flags)
	cmd.Before = func(c *cli.Context) error { return loadConfig(c, cmd.Flags, extra) }
	cmd.Action = func(c *cli.Context) error {
		if len(extra) == 0 {
			return a.run(c, nil)
		}
		return a.run(c, extra)
	}
	return cmd
}

func (a *App) run(c *cli.Context, storageExtra map[string][]string) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))
	}
	logger, err := a.logger(c.String(flagLogLevel), c.String(flagLogFormat))
	if err != nil {
		return err
	}
	opts, err := a.options(c, storageExtra)
	if err != nil {
		return err
	}
	opts.Logger = logger
	warnDebug(c, logger)

	if addr := c.String(flagPprof); addr != "" {
		if err := servePprof(addr, logger); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := opts.New()
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-n.Done():
		// Fail-stop: the node refused every command since its storage
		// failed; close what is left and exit non-zero.
		stop()
		_ = n.Close()
		return n.Err()
	}
	stop() // a second signal kills the process at once
	logger.Info("shutting down")
	if err := n.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (a *App) options(c *cli.Context, storageExtra map[string][]string) (node.Options, error) {
	o := node.Options{
		ID:                 c.String(flagNodeID),
		HTTPAddr:           joinHostPort(c.String("host"), httpPort(c.Int(flagPort))),
		MaxBodyBytes:       c.Int64(flagMaxBody),
		HTTPTokens:         splitList(c.StringSlice(flagHTTPToken)),
		HTTPAllowOrigins:   splitList(c.StringSlice(flagHTTPAllowOrigin)),
		CallbackDeny:       splitList(c.StringSlice(flagCallbackDeny)),
		CallbackAllow:      splitList(c.StringSlice(flagCallbackAllow)),
		HTTPTLSCertFile:    c.String(flagHTTPTLSCert),
		HTTPTLSKeyFile:     c.String(flagHTTPTLSKey),
		MaxTimeout:         c.Int64(flagTimerMax),
		Prefix:             c.String(flagNATSPrefix),
		ChannelHost:        c.String(flagChannelHost),
		ChannelPort:        cmp.Or(c.Int(flagChannelPort), node.DefaultChannelPort),
		NATSPort:           c.Int(flagNATSPort),
		Seeds:              c.StringSlice(flagSeeds),
		HeartbeatInterval:  c.Duration(flagHeartbeat),
		MemberTimeout:      c.Duration(flagMemberTimeout),
		StorageBackend:     c.String(flagStorageBackend),
		StoragePath:        c.String(flagStoragePath),
		StorageNoSync:      c.Bool(flagStorageNoSync),
		StorageExtra:       storageExtra,
		StorageRegistry:    a.Storage,
		Transports:         splitList(c.StringSlice(flagTransport)),
		TransportCatalog:   a.Transports,
		DeliveryTimeout:    c.Duration(flagDeliveryTimeout),
		DeliveryWorkers:    c.Int(flagDeliveryWorkers),
		DeliveryAttempts:   c.Int(flagDeliveryAttempts),
		DeliveryMinBackoff: c.Duration(flagDeliveryMinBackoff),
		DeliveryMaxBackoff: c.Duration(flagDeliveryMaxBackoff),
		ShutdownTimeout:    c.Duration(flagShutdownTimeout),
		ShutdownDrain:      c.Duration(flagShutdownDrain),
		NoMetrics:          !c.Bool(flagMetrics),
		WebhookSecrets:     splitList(c.StringSlice(flagWebhookSecret)),
	}
	if err := checkStorageOptions(cmp.Or(a.Storage, node.DefaultStorage()), o.StorageBackend, storageExtra); err != nil {
		return o, err
	}
	if _, err := httptransport.NewSigner(o.WebhookSecrets); err != nil {
		return o, fmt.Errorf("--%s: %w", flagWebhookSecret, err) // never the secret itself
	}
	o.MaxPending = c.Int(flagTimerMaxPending)
	if o.MaxPending < 0 {
		return o, fmt.Errorf("--%s must not be negative (0: unlimited)", flagTimerMaxPending)
	}
	o.NATSCallbackAllow = splitList(c.StringSlice(flagNATSCallbackAllow))
	o.DeliveryPerDestination = c.Int(flagDeliveryPerDest)
	o.DeliveryBreakerFailures = c.Int(flagBreakerFailures)
	o.DeliveryBreakerOpen = c.Duration(flagBreakerOpen)
	o.DeliveryBreakerProbes = c.Int(flagBreakerProbes)
	if o.MaxTimeout < 1 {
		return o, fmt.Errorf("--%s must be at least 1", flagTimerMax)
	}
	if f := c.String(flagHTTPTokenFile); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return o, fmt.Errorf("--%s: %w", flagHTTPTokenFile, err)
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				o.HTTPTokens = append(o.HTTPTokens, line)
				n++
			}
		}
		if n == 0 {
			return o, fmt.Errorf("--%s %s holds no token", flagHTTPTokenFile, f)
		}
	}
	if err := securityOptions(c, &o); err != nil {
		return o, err
	}
	if err := debugOptions(c, &o); err != nil {
		return o, err
	}
	switch r := c.Duration(flagTimerRetention); {
	case r < 0:
		return o, fmt.Errorf("--%s must not be negative (0 keeps no delivered or cancelled timer)", flagTimerRetention)
	case r == 0:
		o.TimerRetention = -1 // node.Options: negative keeps none, 0 is the default
	default:
		o.TimerRetention = r
	}
	// Every port flag means the same as the node's options: 0 the
	// default, -1 a free port picked at start.
	for _, f := range []string{flagPort, flagChannelPort, flagNATSPort} {
		if p := c.Int(f); p < -1 || p > 65535 {
			return o, fmt.Errorf("--%s %d is not a port (0: the default, -1: a free one)", f, p)
		}
	}
	if hosts := c.String(flagNATSHosts); hosts != "" {
		o.NATSHosts = splitList([]string{hosts})
	}
	if len(o.Seeds) == 0 && o.ChannelPort > 0 && len(o.NATSHosts) == 0 && !node.IsJetStreamBackend(o.StorageBackend) {
		// (A JetStream node without --seeds runs alone: its embedded
		// server cannot be part of a JetStream cluster that never forms.)
		// The original's defaults: seeds on the default channel port of
		// this host and the next one (3455 and 3456).
		o.Seeds = []string{
			net.JoinHostPort(node.DefaultChannelHost, strconv.Itoa(node.DefaultChannelPort)),
			net.JoinHostPort(node.DefaultChannelHost, strconv.Itoa(node.DefaultChannelPort+1)),
		}
	}
	if o.StoragePath == "" && !isMemory(o.StorageBackend) {
		dir, err := defaultDataDir(o.ChannelHost, o.ChannelPort)
		if err != nil {
			return o, err
		}
		o.StoragePath = dir
	}
	return o, nil
}

func isMemory(backend string) bool {
	switch backend {
	case "memory", "memdown", "mem":
		return true
	}
	return false
}

// defaultDataDir is $XDG_DATA_HOME/skyring/<host>-<port> (or
// ~/.local/share/...), so that nodes sharing a machine with distinct channel
// ports get distinct data directories.
func defaultDataDir(host string, port int) (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --%s given and no home directory: %w", flagStoragePath, err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "skyring", host+"-"+strconv.Itoa(port)), nil
}

// httpPort turns the --port flag into a listen port: 0 is the default, -1
// a free one (port 0 to net.Listen).
func httpPort(p int) int {
	switch p {
	case 0:
		return skyring.DefaultHTTPPort
	case -1:
		return 0
	}
	return p
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// splitList flattens repeated and comma-separated values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Log formats of --log:format.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// logger writes to Stderr at level, in format (text or json).
func (a *App) logger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--%s: %w", flagLogLevel, err)
	}
	if d := os.Getenv("DEBUG"); d != "" && debugMatches(d) {
		l = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case logFormatText, "":
		return slog.New(slog.NewTextHandler(a.Stderr, opts)), nil
	case logFormatJSON:
		return slog.New(slog.NewJSONHandler(a.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--%s %q: want %s or %s", flagLogFormat, format, logFormatText, logFormatJSON)
}

// debugMatches reads the original's DEBUG=skyring:* convention (a
// comma-separated list of patterns; "*" and "skyring*" match).
func debugMatches(v string) bool {
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "*" || strings.HasPrefix(p, "skyring") {
			return true
		}
	}
	return false
}

// knownStorageFlags are the --storage:* flags the CLI defines itself.
var knownStorageFlags = map[string]bool{flagStorageBackend: true, flagStoragePath: true, flagStorageNoSync: true}

// splitStorageExtras takes the --storage:<name>=<value> arguments that are
// not flags of the CLI out of args, for custom storage backends.
func splitStorageExtras(args []string) ([]string, map[string][]string) {
	var out []string
	extra := map[string][]string{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			out = append(out, args[i:]...)
			break
		}
		name, ok := strings.CutPrefix(arg, "--storage:")
		if !ok {
			out = append(out, arg)
			continue
		}
		name, val, hasVal := strings.Cut(name, "=")
		if knownStorageFlags["storage:"+name] {
			out = append(out, arg)
			continue
		}
		if !hasVal && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			val = args[i+1]
			i++
		}
		extra[name] = append(extra[name], val)
	}
	if len(extra) == 0 {
		extra = nil
	}
	return out, extra
}

// checkStorageOptions refuses --storage:<key> flags the selected backend
// does not declare (storage.Registry.DeclareOptions), naming each as a flag
// with the one probably meant: a typo such as --storage:paht must not start
// a node on the default directory.
func checkStorageOptions(reg *storage.Registry, backend string, extra map[string][]string) error {
	err := reg.CheckOptions(backend, extra)
	var uo *storage.UnknownOptionError
	if !errors.As(err, &uo) {
		return err
	}
	flags := make([]string, len(uo.Keys))
	for i, k := range uo.Keys {
		flags[i] = "--storage:" + k
		if m := storage.Closest(k, uo.Known); m != "" {
			flags[i] += " (did you mean --storage:" + m + "?)"
		}
	}
	known := make([]string, len(uo.Known))
	for i, k := range uo.Known {
		known[i] = "--storage:" + k
	}
	word := "flag"
	if len(flags) > 1 {
		word = "flags"
	}
	return &wordedError{err: err, msg: fmt.Sprintf("unknown %s %s; storage backend %q takes %s",
		word, strings.Join(flags, ", "), uo.Backend, strings.Join(known, ", "))}
}

// wordedError is err told in the words of the command line (flags, not
// option keys); errors.Is and errors.As still find err.
type wordedError struct {
	err error
	msg string
}

func (e *wordedError) Error() string { return e.msg }
func (e *wordedError) Unwrap() error { return e.err }

// servePprof serves the runtime profiles for operators; it lives as long as
// the process.
func servePprof(addr string, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--%s: %w", flagPprof, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("pprof listening", "addr", ln.Addr().String())
	srv := pprofServer(mux)
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// pprofServer is the pprof listener's server: a slow or idle client cannot
// hold a connection open for ever, and a profile or trace (?seconds=N, up
// to pprofWriteTimeout) still has time to be written.
func pprofServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      pprofWriteTimeout,
		IdleTimeout:       2 * time.Minute,
	}
}

// pprofWriteTimeout bounds one pprof answer; a CPU profile or trace takes
// as long as its ?seconds= (30s by default), so this leaves room for long
// ones.
const pprofWriteTimeout = 2 * time.Minute

// securityOptions reads the cluster secret and the NATS credentials and TLS
// flags. Errors name the flag, never the secret.
func securityOptions(c *cli.Context, o *node.Options) error {
	o.ClusterSecret = c.String(flagChannelSecret)
	if f := c.String(flagChannelSecretFile); f != "" {
		if o.ClusterSecret != "" {
			return fmt.Errorf("give --%s or --%s, not both", flagChannelSecret, flagChannelSecretFile)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--%s: %w", flagChannelSecretFile, err)
		}
		o.ClusterSecret = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
		if o.ClusterSecret == "" {
			return fmt.Errorf("--%s %s holds no secret", flagChannelSecretFile, f)
		}
	}
	if s := o.ClusterSecret; s != "" && (len(s) < 16 || strings.TrimSpace(s) != s) {
		return fmt.Errorf("--%s must be at least 16 characters, without surrounding spaces (e.g. openssl rand -hex 24)", flagChannelSecret)
	}
	o.ClusterTLS = bus.TLSFiles{CertFile: c.String(flagChannelTLSCert), KeyFile: c.String(flagChannelTLSKey), CAFile: c.String(flagChannelTLSCA)}
	o.NATSMaxConnections = c.Int(flagNATSMaxConns)
	if o.NATSMaxConnections < 1 {
		return fmt.Errorf("--%s must be at least 1", flagNATSMaxConns)
	}
	o.NATSCredsFile = c.String(flagNATSCreds)
	o.NATSNkeyFile = c.String(flagNATSNkey)
	o.NATSTLS = bus.TLSFiles{CertFile: c.String(flagNATSTLSCert), KeyFile: c.String(flagNATSTLSKey), CAFile: c.String(flagNATSTLSCA)}
	external := c.String(flagNATSHosts) != ""
	for _, f := range []string{flagNATSCreds, flagNATSNkey, flagNATSTLSCA, flagNATSTLSCert, flagNATSTLSKey} {
		if c.String(f) != "" && !external {
			return fmt.Errorf("--%s is for external NATS servers (--%s); the embedded server needs none", f, flagNATSHosts)
		}
	}
	for _, f := range []string{flagChannelSecret, flagChannelSecretFile, flagChannelTLSCert, flagChannelTLSKey, flagChannelTLSCA} {
		if c.String(f) != "" && external {
			return fmt.Errorf("--%s configures the embedded NATS server; with --%s configure the servers themselves", f, flagNATSHosts)
		}
	}
	return nil
}
