package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/skyring/skyring/node"
)

// The Go twin of the original's index.js: a node embedded in a program,
// closed on SIGINT or SIGTERM.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	n, err := node.New(
		node.WithHTTPAddr("127.0.0.1:0"),  // ":3000" in production
		node.WithStorageBackend("memory"), // or node.WithStoragePath("/var/lib/skyring")
		node.WithCluster("127.0.0.1", -1), // cluster listener on a free port
		node.WithNATSPort(-1),             // embedded NATS on a free port
		node.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	if err := n.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println("skyring listening")

	// A real program waits for the signal here:
	//   <-ctx.Done()
	stop()

	if err := n.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	fmt.Println("shutting down")
	// Output:
	// skyring listening
	// shutting down
}
