package skyringcli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
)

// `skyring timer create|get|ls|cancel|retry` and `skyring cluster`: thin
// commands over the Go client (package client), which holds the logic. What
// is here is flags and formatting.

// Defaults of the API commands.
const (
	// DefaultURL is the node the API commands talk to without --url.
	DefaultURL = "http://127.0.0.1:3000"
	// apiRequestTimeout bounds each request of an API command.
	apiRequestTimeout = 30 * time.Second
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// errSomeFailed is returned by a command that carried out part of its work:
// the details were printed.
var errSomeFailed = errors.New("some operations failed")

// apiFlags are the connection and output flags every API command takes.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", Value: DefaultURL, EnvVars: []string{"SKYRING_URL"}, Usage: "base URL of any node of the cluster (HTTP API)"},
		&cli.StringFlag{Name: "nats", EnvVars: []string{"SKYRING_NATS_URL"}, Usage: "talk to the NATS API at this NATS URL instead of HTTP"},
		&cli.StringFlag{Name: "nats-prefix", Value: skyring.DefaultPrefix, EnvVars: env(flagNATSPrefix), Usage: "subject prefix of the NATS API (the nodes' --nats:prefix)"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"SKYRING_TOKEN"}, Usage: "API token: HTTP bearer token, or the NATS connection's token"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: outputTable, Usage: "table (for people) or json (the API's JSON, for scripts)"},
	}
}

// apiConn is an API command's connection: the client, the HTTP client when
// over HTTP (nil over NATS), and the output format.
type apiConn struct {
	client.Client
	http   *client.HTTPClient
	output string
	close  func()
}

// connect builds the client the flags of c ask for. The caller calls close.
func connect(c *cli.Context) (*apiConn, error) {
	out := c.String("output")
	if out != outputTable && out != outputJSON {
		return nil, fmt.Errorf("-o %q: use table or json", out)
	}
	token := c.String("token")
	if u := c.String("nats"); u != "" {
		nc, err := nats.Connect(u, nats.Name("skyring-cli"), nats.Token(token), nats.Timeout(apiRequestTimeout))
		if err != nil {
			return nil, fmt.Errorf("connecting to NATS at %s: %w", u, err)
		}
		cl, err := client.NewNATS(nc, client.WithPrefix(c.String("nats-prefix")), client.WithTimeout(apiRequestTimeout))
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &apiConn{Client: cl, output: out, close: nc.Close}, nil
	}
	opts := []client.HTTPOption{client.WithHTTPClient(&http.Client{Timeout: apiRequestTimeout})}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	cl, err := client.NewHTTP(c.String("url"), opts...)
	if err != nil {
		return nil, err
	}
	return &apiConn{Client: cl, http: cl, output: out, close: func() {}}, nil
}

// withConn runs fn with the connection the flags of c ask for.
func withConn(fn func(c *cli.Context, conn *apiConn) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		conn, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.close()
		return fn(c, conn)
	}
}

func (a *App) timerCommand() *cli.Command {
	return &cli.Command{
		Name:  "timer",
		Usage: "create, inspect, list, cancel and retry timers (over the HTTP or NATS API)",
		Description: "Talks to any node of a running cluster: --url (default " + DefaultURL + ", env SKYRING_URL)\n" +
			"or --nats <NATS URL>; --token (env SKYRING_TOKEN) for a node run with --http:token.\n" +
			"-o json prints the API's JSON for scripts.",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "schedule a timer; prints its id",
				ArgsUsage: " ",
				Flags: append(apiFlags(),
					&cli.StringFlag{Name: "timeout", Usage: "delay from now: a duration (15m, 1h30m) or milliseconds"},
					&cli.StringFlag{Name: "at", Usage: "absolute due time, RFC 3339 (2030-01-01T00:00:00Z)"},
					&cli.StringFlag{Name: "data", Usage: "data delivered with the callback: a string, or @file for a file's content"},
					&cli.BoolFlag{Name: "json-data", Usage: "--data is JSON (an object or null), sent as is"},
					&cli.StringFlag{Name: "callback", Usage: "callback: an http(s) URI (transport http), or nats:<subject> (transport nats)"},
					&cli.StringFlag{Name: "method", Usage: "callback method (default post for http, publish for nats)"},
					&cli.StringFlag{Name: "id", Usage: "the timer's id (default: the server generates one)"},
				),
				Action: withConn(timerCreate),
			},
			{
				Name:      "get",
				Usage:     "show every field of a timer",
				ArgsUsage: "<id>",
				Flags:     apiFlags(),
				Action:    withConn(timerGet),
			},
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list the cluster's timers in id order, a page at a time",
				Flags: append(apiFlags(),
					&cli.StringFlag{Name: "state", Usage: "pending, retrying, delivered, failed or cancelled (default all)"},
					&cli.IntFlag{Name: "limit", Usage: "timers per page (default the server's, 100; at most 1000)"},
					&cli.BoolFlag{Name: "all", Usage: "follow the cursors to the end of the listing"},
					&cli.StringFlag{Name: "cursor", Usage: "start from this cursor (the one a previous page printed)"},
					&cli.StringFlag{Name: "prefix", Usage: "only ids starting with this"},
					&cli.StringFlag{Name: "due-after", Usage: "only timers due at or after this: Unix ms or RFC 3339"},
					&cli.StringFlag{Name: "due-before", Usage: "only timers due before this: Unix ms or RFC 3339"},
					&cli.StringFlag{Name: "host", Usage: "only timers whose callback URI has this host (or host:port)"},
				),
				Action: withConn(timerList),
			},
			{
				Name:      "cancel",
				Usage:     "cancel pending timers; fails if any could not be cancelled",
				ArgsUsage: "<id>...",
				Flags:     apiFlags(),
				Action:    withConn(timerCancel),
			},
			{
				Name:      "retry",
				Usage:     "deliver a failed timer again, with a fresh attempt budget",
				ArgsUsage: "<id>",
				Flags:     apiFlags(),
				Action:    withConn(timerRetry),
			},
		},
	}
}

func (a *App) clusterCommand() *cli.Command {
	return &cli.Command{
		Name:   "cluster",
		Usage:  "show the ring members, their timer counts and the ring version (HTTP API)",
		Flags:  apiFlags(),
		Action: withConn(clusterShow),
	}
}

func timerCreate(c *cli.Context, conn *apiConn) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s (give the id with --id)", strings.Join(c.Args().Slice(), " "))
	}
	spec := client.TimerSpec{ID: c.String("id")}
	var err error
	switch to, at := c.String("timeout"), c.String("at"); {
	case to != "" && at != "":
		return errors.New("give --timeout or --at, not both")
	case to != "":
		if spec.Timeout, err = parseTimeout(to); err != nil {
			return err
		}
	case at != "":
		if spec.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return fmt.Errorf("--at %q: use RFC 3339, e.g. 2030-01-01T00:00:00Z", at)
		}
	default:
		return errors.New("give --timeout (e.g. 15m) or --at")
	}
	if spec.Callback, err = parseCallback(c.String("callback"), c.String("method")); err != nil {
		return err
	}
	if spec.Data, err = readData(c.String("data"), c.IsSet("data"), c.Bool("json-data")); err != nil {
		return err
	}
	id, err := conn.Create(c.Context, spec)
	if err != nil {
		return err
	}
	if conn.output == outputJSON {
		return writeJSON(c.App.Writer, map[string]string{"id": id})
	}
	_, err = fmt.Fprintln(c.App.Writer, id)
	return err
}

// parseTimeout reads --timeout: a Go duration, or a number of milliseconds.
func parseTimeout(s string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms <= 0 {
			return 0, fmt.Errorf("--timeout %s: must be positive", s)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("--timeout %q: a duration with a unit (15m, 90s) or milliseconds", s)
	}
	if d < time.Millisecond {
		return 0, fmt.Errorf("--timeout %s: must be at least 1ms", s)
	}
	return d, nil
}

// parseCallback reads --callback and --method: an http(s) URI is transport
// http (method post by default), nats:<subject> transport nats (method
// publish by default).
func parseCallback(uri, method string) (client.Callback, error) {
	switch {
	case uri == "":
		return client.Callback{}, errors.New("give --callback: an http(s) URI or nats:<subject>")
	case strings.HasPrefix(uri, "nats:"):
		subj := strings.TrimPrefix(strings.TrimPrefix(uri, "nats:"), "//")
		return client.Callback{Transport: "nats", Method: cmp.Or(strings.ToLower(method), "publish"), URI: subj}, nil
	case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
		return client.Callback{Transport: "http", Method: cmp.Or(strings.ToLower(method), "post"), URI: uri}, nil
	}
	return client.Callback{}, fmt.Errorf("--callback %q: an http(s) URI or nats:<subject>", uri)
}

// readData reads --data: a string, @file for a file's content; with
// --json-data, JSON sent as is.
func readData(s string, set, isJSON bool) (any, error) {
	if !set {
		return nil, nil
	}
	b := []byte(s)
	if f, ok := strings.CutPrefix(s, "@"); ok {
		var err error
		if b, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
	}
	if isJSON {
		if !json.Valid(b) {
			return nil, errors.New("--data is not valid JSON (drop --json-data to send it as a string)")
		}
		return json.RawMessage(b), nil
	}
	return string(b), nil
}

func timerGet(c *cli.Context, conn *apiConn) error {
	id, err := oneID(c)
	if err != nil {
		return err
	}
	info, err := conn.Get(c.Context, id)
	if err != nil {
		return err
	}
	if conn.output == outputJSON {
		return writeJSON(c.App.Writer, info)
	}
	return writeInfo(c.App.Writer, info)
}

func oneID(c *cli.Context) (string, error) {
	if err := flagsFirst(c); err != nil {
		return "", err
	}
	if c.NArg() != 1 {
		return "", fmt.Errorf("give one timer id, got %d arguments", c.NArg())
	}
	return c.Args().First(), nil
}

func timerList(c *cli.Context, conn *apiConn) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))
	}
	q := skyring.ListQuery{
		State:  c.String("state"),
		Limit:  c.Int("limit"),
		Prefix: c.String("prefix"),
		Host:   c.String("host"),
	}
	var err error
	if q.DueAfter, err = dueBound("due-after", c.String("due-after")); err != nil {
		return err
	}
	if q.DueBefore, err = dueBound("due-before", c.String("due-before")); err != nil {
		return err
	}
	if cur := c.String("cursor"); cur != "" {
		after, err := skyring.DecodeCursor(cur)
		if err != nil {
			return fmt.Errorf("--cursor: %w", err)
		}
		q.After = after
	}
	var page skyring.ListPage
	if c.Bool("all") {
		page.Timers = []skyring.Info{}
		err := client.ListAll(c.Context, conn, q, func(info skyring.Info) error {
			page.Timers = append(page.Timers, info)
			return nil
		})
		if err != nil {
			return err
		}
	} else {
		if page, err = conn.List(c.Context, q); err != nil {
			return err
		}
	}
	if conn.output == outputJSON {
		return writeJSON(c.App.Writer, page)
	}
	if err := writeList(c.App.Writer, page.Timers); err != nil {
		return err
	}
	if page.Cursor != "" {
		fmt.Fprintf(c.App.ErrWriter, "more timers follow: --cursor %s (or --all)\n", page.Cursor)
	}
	return nil
}

// dueBound reads --due-after or --due-before: Unix ms or RFC 3339; "" is
// 0 (no bound).
func dueBound(flag, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.UnixMilli() <= 0 {
		return 0, fmt.Errorf("--%s %q: Unix ms or RFC 3339, e.g. 2030-01-01T00:00:00Z", flag, v)
	}
	return t.UnixMilli(), nil
}

func timerCancel(c *cli.Context, conn *apiConn) error {
	if c.NArg() == 0 {
		return errors.New("give one or more timer ids")
	}
	if err := flagsFirst(c); err != nil {
		return err
	}
	result := struct {
		Cancelled []string          `json:"cancelled"`
		Failed    map[string]string `json:"failed,omitempty"`
	}{Cancelled: []string{}}
	for _, id := range c.Args().Slice() {
		if err := conn.Cancel(c.Context, id); err != nil {
			if result.Failed == nil {
				result.Failed = map[string]string{}
			}
			result.Failed[id] = reason(err)
			if conn.output == outputTable {
				fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", id, reason(err))
			}
			continue
		}
		result.Cancelled = append(result.Cancelled, id)
		if conn.output == outputTable {
			fmt.Fprintf(c.App.Writer, "cancelled %s\n", id)
		}
	}
	if conn.output == outputJSON {
		if err := writeJSON(c.App.Writer, result); err != nil {
			return err
		}
	}
	if n := len(result.Failed); n > 0 {
		return fmt.Errorf("%d of %d timers not cancelled: %w", n, c.NArg(), errSomeFailed)
	}
	return nil
}

// flagsFirst refuses one of the command's flags given after an id: the
// command line parser stops at the first argument, so it would be taken
// for an id.
func flagsFirst(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		name, ok := strings.CutPrefix(a, "-")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
		for _, f := range c.Command.Flags {
			if slices.Contains(f.Names(), name) {
				return fmt.Errorf("flags go before the ids: %s came after one", a)
			}
		}
	}
	return nil
}

// reason is what a client error says without the client's wrapping: the
// server's reason, or the sentinel's text.
func reason(err error) string {
	switch {
	case errors.Is(err, skyring.ErrTimerNotFound):
		return "not found (404): no such pending timer"
	case errors.Is(err, skyring.ErrNotFailed):
		return "not failed (409): " + err.Error()
	}
	return err.Error()
}

func timerRetry(c *cli.Context, conn *apiConn) error {
	id, err := oneID(c)
	if err != nil {
		return err
	}
	if err := conn.Retry(c.Context, id); err != nil {
		return err
	}
	if conn.output == outputJSON {
		return writeJSON(c.App.Writer, map[string]string{"retried": id})
	}
	_, err = fmt.Fprintf(c.App.Writer, "retried %s\n", id)
	return err
}

func clusterShow(c *cli.Context, conn *apiConn) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))
	}
	if conn.http == nil {
		return errors.New("the NATS API has no cluster subject: use --url with a node's HTTP address")
	}
	cl, err := conn.http.Cluster(c.Context)
	if err != nil {
		return err
	}
	if conn.output == outputJSON {
		return writeJSON(c.App.Writer, cl)
	}
	return writeCluster(c.App.Writer, cl)
}

// ---------------------------------------------------------------------------
// Formatting

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// fmtMs shows a Unix ms time as RFC 3339 UTC with milliseconds ("-" for 0).
func fmtMs(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// dash shows "" as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n runes for a table cell.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func callbackString(cb skyring.Callback) string {
	return cb.Transport + " " + cb.Method + " " + cb.URI
}

// writeInfo shows every field of a timer, one per line.
func writeInfo(w io.Writer, i skyring.Info) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("ID", i.ID)
	row("State", i.State)
	row("Due", fmtMs(i.Due))
	row("Created", fmtMs(i.Created))
	row("Timeout", (time.Duration(i.Timeout) * time.Millisecond).String())
	row("Callback", callbackString(i.Callback))
	if r := i.Callback.Retry; r != (skyring.Retry{}) {
		b, _ := json.Marshal(r)
		row("Retry policy", string(b))
	}
	row("Data", string(i.Data))
	row("Node", dash(i.Node))
	row("Attempts", strconv.Itoa(i.Attempts))
	row("Next attempt", fmtMs(i.NextAttempt))
	row("Last error", dash(i.LastError))
	status := "-"
	if i.LastStatus != 0 {
		status = strconv.Itoa(i.LastStatus)
	}
	row("Last status", status)
	row("Delivered at", fmtMs(i.DeliveredAt))
	row("Finished at", fmtMs(i.FinishedAt))
	return tw.Flush()
}

// writeList shows timers as a table, one a line.
func writeList(w io.Writer, timers []skyring.Info) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tDUE\tATTEMPTS\tCALLBACK\tNODE\tLAST ERROR")
	for _, i := range timers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", i.ID, i.State, fmtMs(i.Due), i.Attempts,
			clip(callbackString(i.Callback), 60), dash(i.Node), clip(dash(i.LastError), 60))
	}
	return tw.Flush()
}

// writeCluster shows the members as a table, then the ring version.
func writeCluster(w io.Writer, cl client.Cluster) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tHTTP\tNATS\tTIMERS\tSTARTED")
	total := 0
	for _, m := range cl.Members {
		id := m.ID
		if id == cl.Node.ID {
			id += " (this)"
		}
		total += m.Timers
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", id, dash(m.HTTPAddr), dash(m.NATS), m.Timers, fmtMs(m.Started))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d members, %d timers, ring version %d\n", len(cl.Members), total, cl.RingVersion)
	return err
}
