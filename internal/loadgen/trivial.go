package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
)

// TrivialCommandName is the name of the hidden subcommand that serves the
// trivial baseline target; Run re-executes the binary with it.
const TrivialCommandName = "trivial-target"

// trivialHandler reads the body and answers 201, as cheaply as a Go
// handler can: the ceiling a timer server's HTTP edge could reach.
func trivialHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusCreated)
}

// ServeTrivial serves the trivial baseline handler (read the body, answer
// 201) on ln, in a goroutine owned by the returned server; stop it with
// Close or Shutdown.
func ServeTrivial(ln net.Listener) *http.Server {
	srv := &http.Server{
		Handler:           http.HandlerFunc(trivialHandler),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }() // returns http.ErrServerClosed on Close
	return srv
}

// TrivialCommand is the hidden `trivial-target` subcommand: it serves the
// trivial handler on --addr (loopback only), prints the listen address
// (host:port) as its first line on stdout, and runs until its context ends
// or, with --exit-on-eof, until its stdin closes (so it never outlives the
// bench that started it).
func TrivialCommand() *cli.Command {
	return &cli.Command{
		Name:   TrivialCommandName,
		Usage:  "serve a trivial POST handler (baseline target of skyring bench)",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:0", Usage: "listen address (loopback only)"},
			&cli.BoolFlag{Name: "exit-on-eof", Usage: "exit when stdin reaches end of file"},
		},
		Action: func(c *cli.Context) error {
			addr := c.String("addr")
			if err := checkLoopbackHostPort(addr); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", addr, err)
			}
			srv := ServeTrivial(ln)
			if _, err := fmt.Fprintln(c.App.Writer, ln.Addr().String()); err != nil {
				_ = srv.Close()
				return fmt.Errorf("printing the listen address: %w", err)
			}
			ctx := c.Context
			if c.Bool("exit-on-eof") {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				go func() {
					_, _ = io.Copy(io.Discard, os.Stdin)
					cancel()
				}()
			}
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
			return nil
		},
	}
}

// trivialProcess is a running trivial-target child process.
type trivialProcess struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  chan struct{} // closed when stdout reached EOF
	stderr  *capBuffer
	URL     string
	stopped sync.Once
	stopErr error
}

// startTrivial starts argv + --addr=127.0.0.1:0 --exit-on-eof and reads the
// address it listens on, waiting at most within for it.
func startTrivial(ctx context.Context, argv []string, within time.Duration) (*trivialProcess, error) {
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding this executable for the baseline target: %w", err)
		}
		argv = []string{exe, TrivialCommandName}
	}
	args := append(append([]string(nil), argv[1:]...), "--addr=127.0.0.1:0", "--exit-on-eof")
	p := &trivialProcess{
		cmd:    exec.Command(argv[0], args...),
		stdout: make(chan struct{}),
		stderr: &capBuffer{max: 4096},
	}
	p.cmd.Stderr = p.stderr
	// Wait returns at most this long after the child exited even if
	// something it started still holds stderr open.
	p.cmd.WaitDelay = 5 * time.Second
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("baseline target stdin: %w", err)
	}
	p.stdin = stdin
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("baseline target stdout: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting baseline target %s: %w", argv[0], err)
	}
	addrs := make(chan string, 1)
	go func() {
		defer close(p.stdout)
		defer close(addrs)
		// The address is the first line that is a loopback host:port (a
		// CLI may print a banner before it).
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); checkLoopbackHostPort(line) == nil {
				addrs <- line
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	tm := time.NewTimer(within)
	defer tm.Stop()
	select {
	case addr, ok := <-addrs:
		if ok {
			p.URL = "http://" + addr
		} else {
			err = errors.New("it exited without printing its address")
		}
	case <-tm.C:
		err = fmt.Errorf("no address within %s", within)
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("starting baseline target: %w (stderr: %s)", err, p.stderr)
	}
	return p, nil
}

// Stop closes the child's stdin (it exits at EOF), kills it if it has not
// exited within 5s, and reaps it. It is idempotent.
func (p *trivialProcess) Stop() error {
	p.stopped.Do(func() {
		_ = p.stdin.Close()
		tm := time.NewTimer(5 * time.Second)
		defer tm.Stop()
		select {
		case <-p.stdout:
		case <-tm.C:
			_ = p.cmd.Process.Kill()
		}
		// Wait (bounded by WaitDelay once the child is gone) closes the
		// stdout pipe, which ends its reader even if the child was killed
		// while something else still held its stdout.
		if err := p.cmd.Wait(); err != nil {
			p.stopErr = fmt.Errorf("baseline target: %w (stderr: %s)", err, p.stderr)
		}
		<-p.stdout
	})
	return p.stopErr
}

// capBuffer keeps the first max bytes written to it.
type capBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.b.String())
}
