package builtin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/builtin"
)

// Open the store the way the node does for --storage:backend=leveldown
// --storage:path=<dir>: by name, through the default registry.
func ExampleDefault() {
	dir, err := os.MkdirTemp("", "skyring-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	r := builtin.Default()
	fmt.Println(r.Names())

	s, err := r.Open("leveldown", storage.Options{Path: filepath.Join(dir, "data")})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, &skyring.Timer{ID: "hello", Due: 42}); err != nil {
		panic(err)
	}
	t, err := s.Get(ctx, "hello")
	if err != nil {
		panic(err)
	}
	fmt.Println(t.ID, t.Due)
	// Output:
	// [leveldb memory]
	// hello 42
}
