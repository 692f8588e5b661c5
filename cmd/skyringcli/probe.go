package skyringcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"
)

// ErrProbe: `skyring probe` got no 2xx answer.
var ErrProbe = errors.New("probe failed")

// probeCommand is `skyring probe <url>`: a health check for images without
// curl (the distroless image). It GETs the URL and exits 0 on a 2xx answer,
// 1 on anything else (another status, no answer within --timeout).
func (a *App) probeCommand() *cli.Command {
	return &cli.Command{
		Name:      "probe",
		Usage:     "GET a URL (e.g. http://127.0.0.1:3000/readyz): exit 0 on a 2xx answer, 1 otherwise",
		ArgsUsage: "<url>",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "give up after this long"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("probe: want one URL, got %d arguments", c.NArg())
			}
			return probe(c.Context, c.Args().First(), c.Duration("timeout"))
		},
	}
}

// probe GETs url and returns nil on a 2xx answer, else an error matching
// ErrProbe that says what came back (the x-skyring-reason of an error).
func probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProbe, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProbe, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("%s answered %s", url, resp.Status)
		if r := resp.Header.Get("x-skyring-reason"); r != "" {
			msg += ": " + r
		}
		return fmt.Errorf("%w: %s", ErrProbe, msg)
	}
	return nil
}
