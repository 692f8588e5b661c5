package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
	"github.com/skyring/skyring/node"
)

// startExampleNode starts a single in-process Skyring node on free ports,
// with memory storage, as `skyring run` would with its own flags.
func startExampleNode() (*node.Node, error) {
	n, err := node.New(node.WithOptions(node.Options{
		HTTPAddr:       "127.0.0.1:0",
		NATSPort:       -1,
		ChannelPort:    -1,
		StorageBackend: "memory",
		Transports:     []string{"http"},
		Logger:         slog.New(slog.DiscardHandler),
	}))
	if err != nil {
		return nil, err
	}
	if err := n.Start(context.Background()); err != nil {
		return nil, err
	}
	return n, nil
}

func ExampleHTTPClient() {
	n, err := startExampleNode()
	if err != nil {
		panic(err)
	}
	defer n.Close()

	ctx := context.Background()
	c, err := client.NewHTTP("http://" + n.HTTPAddr().String())
	if err != nil {
		panic(err)
	}

	// Schedule a webhook in one minute, with a JSON object as its body.
	id, err := c.Create(ctx, client.TimerSpec{
		ID:       "order-42-reminder",
		Timeout:  time.Minute,
		Data:     map[string]any{"order": 42},
		Callback: client.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1:9/hooks/reminder"},
	})
	if err != nil {
		panic(err)
	}
	info, err := c.Get(ctx, id)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.ID, info.Timeout, string(info.Data))

	// The same id again is refused.
	_, err = c.Create(ctx, client.TimerSpec{ID: id, Timeout: time.Minute, Callback: info.Callback})
	fmt.Println("duplicate:", errors.Is(err, skyring.ErrTimerExists))

	// Push it back, with a plain string as its body.
	err = c.Update(ctx, id, client.TimerSpec{Timeout: 2 * time.Minute, Data: "still pending", Callback: info.Callback})
	if err != nil {
		panic(err)
	}
	info, _ = c.Get(ctx, id)
	fmt.Println(info.Timeout, string(info.Data))

	if err := c.Cancel(ctx, id); err != nil {
		panic(err)
	}
	// A cancelled timer is kept for a while (--timer:retention) with its
	// fate; it cannot be cancelled twice.
	info, _ = c.Get(ctx, id)
	fmt.Println("after cancel:", info.State, errors.Is(c.Cancel(ctx, id), skyring.ErrTimerNotFound))

	// A rejected request carries the server's reason.
	_, err = c.Create(ctx, client.TimerSpec{
		Timeout:  time.Minute,
		Callback: client.Callback{Transport: "carrier-pigeon", Method: "post", URI: "coop://7"},
	})
	var ve *skyring.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("invalid:", ve.Reason)
	}

	// Output:
	// order-42-reminder 60000 {"order":42}
	// duplicate: true
	// 120000 "still pending"
	// after cancel: cancelled true
	// invalid: Unknown transport "carrier-pigeon"; known: http
}

func ExampleNATSClient() {
	n, err := startExampleNode()
	if err != nil {
		panic(err)
	}
	defer n.Close()

	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	ctx := context.Background()
	c, err := client.NewNATS(nc, client.WithTimeout(2*time.Second))
	if err != nil {
		panic(err)
	}

	// Without an id, the server generates one (a UUID).
	id, err := c.Create(ctx, client.TimerSpec{
		At:       time.Now().Add(time.Hour),
		Data:     "wake up",
		Callback: client.Callback{Transport: "http", Method: "put", URI: "http://127.0.0.1:9/alarm"},
	})
	if err != nil {
		panic(err)
	}
	info, err := c.Get(ctx, id)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.ID == id, string(info.Data), info.Callback.Method)

	fmt.Println("cancel:", c.Cancel(ctx, id))
	fmt.Println("cancel again:", errors.Is(c.Cancel(ctx, id), skyring.ErrTimerNotFound))

	// Output:
	// true "wake up" put
	// cancel: <nil>
	// cancel again: true
}

func ExampleNATSClient_Publish() {
	n, err := startExampleNode()
	if err != nil {
		panic(err)
	}
	defer n.Close()

	nc, err := nats.Connect(n.NATSURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	c, err := client.NewNATS(nc)
	if err != nil {
		panic(err)
	}

	// Fire and forget: no reply is awaited, the id is chosen here.
	id, err := c.Publish(client.TimerSpec{
		Timeout:  time.Hour,
		Callback: client.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1:9/later"},
	})
	if err != nil {
		panic(err)
	}
	if err := nc.Flush(); err != nil {
		panic(err)
	}

	// The create is carried out asynchronously: wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		info, err := c.Get(ctx, id)
		if err == nil {
			fmt.Println("found, timeout", info.Timeout)
			break
		}
		if !errors.Is(err, skyring.ErrTimerNotFound) {
			panic(err)
		}
		select {
		case <-ctx.Done():
			panic("the published timer never appeared")
		case <-time.After(time.Millisecond):
		}
	}

	// Output:
	// found, timeout 3600000
}

// Dead letters: list the timers whose delivery failed for good, and deliver
// each again. (No output: it needs a cluster holding failed timers.)
func ExampleListAll() {
	c, err := client.NewHTTP("http://127.0.0.1:3000")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	err = client.ListAll(ctx, c, skyring.ListQuery{State: skyring.StateNameFailed}, func(info skyring.Info) error {
		fmt.Printf("%s failed after %d attempts: %s\n", info.ID, info.Attempts, info.LastError)
		err := c.Retry(ctx, info.ID)
		if errors.Is(err, skyring.ErrNotFailed) || errors.Is(err, skyring.ErrTimerNotFound) {
			return nil // retried, or dropped, by someone else meanwhile
		}
		return err
	})
	if err != nil {
		fmt.Println("listing dead letters:", err)
	}
}
