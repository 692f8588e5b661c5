// Package builtin registers Skyring's built-in storage backends on a
// storage.Registry:
//
//   - "leveldb" (aliases "leveldown", "goleveldb"): leveldbstore, goleveldb
//     files in --storage:path; durable; the default;
//   - "memory" (aliases "memdown", "mem"): memstore; nothing survives the
//     process.
//
// The aliases are the names the original Skyring's levelup backends went by,
// so that its --storage:backend values keep working. It is a package of its
// own because storage cannot import its subpackages (they import storage).
package builtin

import (
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/memstore"
)

// Names of the built-in backends.
const (
	LevelDB = "leveldb"
	Memory  = "memory"
)

// Register adds the built-in backends to r. It fails (with an error
// matching storage.ErrDuplicateBackend) if r already has one of their names
// or aliases.
func Register(r *storage.Registry) error {
	if err := r.Register(LevelDB, leveldbstore.OpenStore, "leveldown", "goleveldb"); err != nil {
		return err
	}
	return r.Register(Memory, memstore.OpenStore, "memdown", "mem")
}

// Default returns a new registry holding the built-in backends; register
// custom backends on it before the node opens its store.
func Default() *storage.Registry {
	r := storage.NewRegistry()
	if err := Register(r); err != nil {
		panic("storage/builtin: registering on an empty registry: " + err.Error())
	}
	return r
}
