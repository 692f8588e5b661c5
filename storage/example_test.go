package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/memstore"
)

// countingStore is a custom backend: it wraps the in-memory store and counts
// writes. A real one would keep timers in Redis, Postgres, S3...
type countingStore struct {
	*memstore.Store
	puts int
}

func (c *countingStore) Put(ctx context.Context, timers ...*skyring.Timer) error {
	c.puts += len(timers)
	return c.Store.Put(ctx, timers...)
}

// Register a custom backend by name (and alias); the node opens whichever
// --storage:backend names, handing it the other --storage:* options.
func ExampleRegistry() {
	r := storage.NewRegistry() // in a node binary: builtin.Default()
	err := r.Register("counting", func(opts storage.Options) (storage.Store, error) {
		fmt.Println("opening with", opts.Extra["prefix"])
		return &countingStore{Store: memstore.New()}, nil
	}, "count")
	if err != nil {
		panic(err)
	}

	s, err := r.Open("count", storage.Options{Extra: map[string][]string{"prefix": {"skyring"}}})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()
	_ = s.Put(ctx, &skyring.Timer{ID: "t1"}, &skyring.Timer{ID: "t2"})
	fmt.Println("puts:", s.(*countingStore).puts)

	fmt.Println("backends:", strings.Join(r.Names(), ", "))
	_, err = r.Open("redis", storage.Options{})
	fmt.Println(errors.Is(err, storage.ErrUnknownBackend), err)
	// Output:
	// opening with [skyring]
	// puts: 2
	// backends: counting
	// true storage: unknown backend "redis"; known: counting (count)
}
