package storage

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Opener opens a backend with the options the node was configured with
// (--storage:path, --storage:nosync and any other --storage:<name>=<value>
// in Options.Extra).
type Opener func(opts Options) (Store, error)

// Registry maps backend names (and their aliases) to Openers. The node opens
// its store through a Registry by the name given in --storage:backend, so an
// embedder plugs a custom backend in by registering it under a new name, as
// the original Skyring accepted any levelup backend.
//
// A Registry is a value the caller owns (no global state); the built-in
// backends are registered by package storage/builtin. The zero value is not
// usable; call NewRegistry. It is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	openers map[string]Opener // by name and by alias
	primary map[string]string // name or alias -> name
	aliases map[string][]string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		openers: make(map[string]Opener),
		primary: make(map[string]string),
		aliases: make(map[string][]string),
	}
}

// Register adds a backend under name and any aliases. Names are matched
// exactly. A name or alias that is already taken (as a name or as an alias)
// is an error matching ErrDuplicateBackend, and nothing is registered.
func (r *Registry) Register(name string, open Opener, aliases ...string) error {
	if name == "" {
		return errors.New("storage: register: empty backend name")
	}
	if open == nil {
		return fmt.Errorf("storage: register %q: nil Opener", name)
	}
	all := append([]string{name}, aliases...)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range all {
		if n == "" {
			return fmt.Errorf("storage: register %q: empty alias", name)
		}
		if owner, ok := r.primary[n]; ok {
			return fmt.Errorf("%w: %q is already registered (by backend %q)", ErrDuplicateBackend, n, owner)
		}
		if slices.Contains(all[:i], n) {
			return fmt.Errorf("%w: %q given twice", ErrDuplicateBackend, n)
		}
	}
	for _, n := range all {
		r.openers[n] = open
		r.primary[n] = name
	}
	r.aliases[name] = slices.Clone(aliases)
	return nil
}

// Open opens the backend registered under name (or one of its aliases). An
// unknown name is an error matching ErrUnknownBackend that lists the known
// names. The Opener's own errors are wrapped, so errors.Is still finds, for
// example, ErrLocked.
func (r *Registry) Open(name string, opts Options) (Store, error) {
	r.mu.RLock()
	open, ok := r.openers[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q; known: %s", ErrUnknownBackend, name, r.describe())
	}
	s, err := open(opts)
	if err != nil {
		return nil, fmt.Errorf("storage: open backend %q: %w", name, err)
	}
	if s == nil {
		return nil, fmt.Errorf("storage: open backend %q: Opener returned a nil Store", name)
	}
	return s, nil
}

// Names returns the registered backend names (not their aliases), sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.aliases))
	for n := range r.aliases {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// describe lists the names with their aliases: "leveldb (goleveldb,
// leveldown), memory (mem, memdown)".
func (r *Registry) describe() string {
	names := r.Names()
	if len(names) == 0 {
		return "none"
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n
		if a := r.aliases[n]; len(a) > 0 {
			a = slices.Clone(a)
			slices.Sort(a)
			parts[i] += " (" + strings.Join(a, ", ") + ")"
		}
	}
	return strings.Join(parts, ", ")
}
