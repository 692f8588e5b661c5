// Command customtransport is a skyring binary with one extra transport, built
// the way the original's "Custom Transports" section describes: a type that
// executes fired timers (and optionally shuts down), registered by name
// before the CLI runs.
//
//	go build -o skyring-file ./examples/customtransport
//	./skyring-file run -t http -t file
//	curl -XPOST localhost:3000/timer -d '{"timeout":1000,"data":"hi",
//	  "callback":{"transport":"file","method":"append","uri":"/tmp/fired.log"}}'
//
// The "file" transport appends one line per fired timer, "<id> <data>", to
// the file named in callback.uri.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/cmd/skyringcli"
	"github.com/skyring/skyring/transports"
)

// FileTransport appends fired timers to files.
type FileTransport struct {
	log *slog.Logger
	mu  sync.Mutex // one write at a time, so lines never interleave
}

// Name is what clients put in callback.transport.
func (*FileTransport) Name() string { return "file" }

// Execute appends "<id> <data>" to the file at t.Callback.URI.
func (f *FileTransport) Execute(ctx context.Context, t *skyring.Timer) error {
	if t.Callback.Method != "append" {
		return transports.Permanent(fmt.Errorf("file transport: method %q, want append", t.Callback.Method))
	}
	body, _ := t.Body()
	f.mu.Lock()
	defer f.mu.Unlock()
	fh, err := os.OpenFile(t.Callback.URI, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("file transport: %w", err)
	}
	_, err = fmt.Fprintf(fh, "%s %s\n", t.ID, body)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// Shutdown runs once when the node closes.
func (f *FileTransport) Shutdown(ctx context.Context) error {
	f.log.Info("file transport shut down")
	return nil
}

func main() {
	app := skyringcli.New()
	err := app.Transports.Add("file", func(deps transports.Deps) (transports.Transport, error) {
		return &FileTransport{log: deps.Logger}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(app.Main(os.Args))
}
