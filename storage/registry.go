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
	options map[string][]string // by name: the Extra keys it declares
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		openers: make(map[string]Opener),
		primary: make(map[string]string),
		aliases: make(map[string][]string),
		options: make(map[string][]string),
	}
}

// BaseOptions are the option keys every backend takes: --storage:backend,
// --storage:path and --storage:nosync (storage.Options' own fields).
var BaseOptions = []string{"backend", "nosync", "path"}

// DeclareOptions names the further options (keys of Options.Extra, given as
// --storage:<key>=<value>) the backend registered under name (or an alias)
// takes. A backend that declares none takes only BaseOptions: any other key
// is refused by CheckOptions, so a typo (--storage:paht) stops the node
// instead of being ignored. Keys add to those declared before.
func (r *Registry) DeclareOptions(name string, keys ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.primary[name]
	if !ok {
		return fmt.Errorf("%w %q; known: %s", ErrUnknownBackend, name, r.describeLocked())
	}
	for _, k := range keys {
		if k == "" {
			return fmt.Errorf("storage: declare options of %q: empty key", name)
		}
		if !slices.Contains(r.options[p], k) {
			r.options[p] = append(r.options[p], k)
		}
	}
	return nil
}

// OptionKeys returns the option keys the backend registered under name (or
// an alias) takes, BaseOptions included, sorted; ok is false for an unknown
// backend.
func (r *Registry) OptionKeys(name string) (keys []string, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.primary[name]
	if !ok {
		return nil, false
	}
	keys = append(slices.Clone(BaseOptions), r.options[p]...)
	slices.Sort(keys)
	return slices.Compact(keys), true
}

// CheckOptions refuses extra keys the backend registered under name does
// not declare, with an error matching ErrUnknownOption that names each such
// key and, when one is close, the key that was probably meant. An unknown
// backend is not checked here: Open reports it.
func (r *Registry) CheckOptions(name string, extra map[string][]string) error {
	known, ok := r.OptionKeys(name)
	if !ok {
		return nil
	}
	var bad []string
	for k := range extra {
		if !slices.Contains(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	msgs := make([]string, len(bad))
	for i, k := range bad {
		msgs[i] = fmt.Sprintf("%q", k)
		if m := Closest(k, known); m != "" {
			msgs[i] += fmt.Sprintf(" (did you mean %q?)", m)
		}
	}
	return &UnknownOptionError{Backend: name, Keys: bad, Known: known,
		msg: fmt.Sprintf("%s %s for backend %q; known: %s", ErrUnknownOption, strings.Join(msgs, ", "), name, strings.Join(known, ", "))}
}

// UnknownOptionError is CheckOptions' error: it matches ErrUnknownOption
// and carries the keys, so a caller (the CLI) can word them as flags.
type UnknownOptionError struct {
	Backend string   // the selected backend
	Keys    []string // the keys it does not declare, sorted
	Known   []string // the keys it takes, sorted
	msg     string
}

func (e *UnknownOptionError) Error() string { return e.msg }

// Is makes the error match ErrUnknownOption.
func (e *UnknownOptionError) Is(target error) bool { return target == ErrUnknownOption }

// Closest returns the candidate within an edit distance of 2 of s (and less
// than half its length), the nearest first, or "" if none is that close.
func Closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD && 2*d < max(len(s), len(c)) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, with an adjacent
// transposition counting as one edit (optimal string alignment).
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
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
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.describeLocked()
}

// describeLocked is describe with r.mu held.
func (r *Registry) describeLocked() string {
	names := make([]string, 0, len(r.aliases))
	for n := range r.aliases {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
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
