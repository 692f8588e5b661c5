// Package leveldbstore is the durable storage.Store of a Skyring node: a
// goleveldb database in one directory (--storage:path), the default backend
// (--storage:backend=leveldb, aliases leveldown and goleveldb).
//
// # Layout
//
// Each timer is one key, "t/"+id, whose value is the timer's binary encoding
// (skyring.Timer.AppendBinary). Node-level values (Store.Meta) live under
// "m/"+key. A timer record that cannot be decoded is moved to "q/t/"+id
// (see below). The prefixes never overlap, whatever the id.
//
// # Corrupt records
//
// One record that does not decode must not keep a node from starting, so
// Iterate does not stop at it. It moves the record aside, in one batch
// written like any other (synced unless NoSync: delete "t/"+id, put the
// same bytes under "q/t/"+id), logs it at
// error level to storage.Options.Logger, calls storage.Options.OnCorrupt,
// and goes on with the next record. The bytes are kept for whoever
// investigates the loss (Store.Quarantined lists them); nothing reads them
// again, so a second Iterate does not see the record. Get of that id returns
// an error matching skyring.ErrCorrupt until a new timer is stored under it.
//
// # Write failures
//
// goleveldb reports a failed journal write or fsync to the writers of that
// batch only; the next write goes on appending to the same journal. That is
// not safe: after a failed fsync the kernel may have dropped the dirty pages,
// and at recovery goleveldb skips the rest of a journal block with a torn
// record in it, acknowledged writes after it included. So the first failed
// write latches the store: it and every later Put, Delete and SetMeta fail
// with an error matching storage.ErrWrite, until the store is closed and
// opened again. Reads go on answering from memory and the table files, which
// hold exactly the acknowledged writes.
//
// # Durability and group commit
//
// Every Put, Delete and SetMeta is written with WriteOptions{Sync: true}
// (unless storage.Options.NoSync): when it returns nil the change is in the
// journal and fsynced. goleveldb merges the writes of concurrent callers
// into one journal write and one fsync (its write merge, which this package
// leaves on), so durability costs each caller one fsync of latency but does
// not cap throughput at one write per fsync: with 64 concurrent writers a
// commodity disk sustains tens of thousands of synced writes a second (see
// BenchmarkPutParallel).
//
// # Locking and recovery
//
// The directory is locked (flock on its LOCK file) while the store is open.
// A second Open of the same directory, from this process or another, fails
// at once with a *storage.LockedError (errors.Is(err, storage.ErrLocked)).
// If the manifest is missing or corrupted, Open rebuilds it from the table
// files with goleveldb's Recover and logs that it did; if that fails too, the
// error says so.
//
// # Memory
//
// A node may hold a million pending timers, so the caches are kept small and
// fixed, independent of the number of timers:
//
//   - block cache: 8 MiB (BlockCacheCapacity);
//   - memtable: 8 MiB (WriteBuffer); while one is flushed a second one
//     fills, so up to 16 MiB;
//   - open table files: at most 256 (OpenFilesCacheCapacity), which also
//     bounds the file descriptors the store uses;
//   - a 10-bit bloom filter per key (about 1.2 MiB per million timers, kept
//     in the block cache) so that a Get for an id that is not stored rarely
//     reads a table.
//
// Iterate streams: it walks a goleveldb iterator (which reads from an
// implicit snapshot) with the block cache bypassed, decoding one timer at a
// time, so a recovery scan neither loads every timer at once nor evicts the
// working set from the cache.
//
// Like the storage package, its Go API is internal to the node and may
// change.
package leveldbstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/syndtr/goleveldb/leveldb"
	lverrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	lvstorage "github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// Memory settings; see the package documentation.
const (
	BlockCacheCapacity     = 8 << 20
	WriteBuffer            = 8 << 20
	OpenFilesCacheCapacity = 256
	bloomBitsPerKey        = 10
)

const (
	timerPrefix      = "t/"
	metaPrefix       = "m/"
	quarantinePrefix = "q/" // followed by the record's original key
)

// Store is a storage.Store on a goleveldb database. Open it with Open.
type Store struct {
	path      string
	wo        *opt.WriteOptions
	log       *slog.Logger
	onCorrupt func(id string, err error)

	// broken is the first write failure, wrapped to match storage.ErrWrite;
	// once set, every write returns it (see the package documentation).
	broken atomic.Pointer[error]

	// moveMu makes moving a corrupt record aside atomic with respect to
	// writers: Put and Delete hold it shared while they write, the move
	// holds it exclusively while it checks that the record is still the
	// corrupt one Iterate read from its snapshot and moves it. Without it a
	// Put racing with recovery could have its fresh record moved aside.
	// Lock order: mu (shared) before moveMu.
	moveMu sync.RWMutex

	// mu guards closed and the lifetime of db and stor: every call holds a
	// read lock while it uses db, so Close (write lock) waits for running
	// calls, including an Iterate in progress, to finish.
	mu     sync.RWMutex
	closed bool
	db     *leveldb.DB
	stor   lvstorage.Storage
}

var _ storage.Store = (*Store)(nil)

// levelOptions returns the goleveldb options Open uses.
func levelOptions() *opt.Options {
	return &opt.Options{
		BlockCacheCapacity:     BlockCacheCapacity,
		WriteBuffer:            WriteBuffer,
		OpenFilesCacheCapacity: OpenFilesCacheCapacity,
		Filter:                 filter.NewBloomFilter(bloomBitsPerKey),
		// Group commit: concurrent writes are merged into one journal write
		// and fsync. This is goleveldb's default; it is spelled out because
		// the throughput of synced writes depends on it.
		NoWriteMerge: false,
		// Reads never trigger compactions; the node reads little and only
		// by id, and seek-triggered compactions only cost I/O here.
		DisableSeeksCompaction: true,
		// goleveldb delays every write by 1 ms once level 0 holds
		// WriteL0SlowdownTrigger tables (default 8), which under a steady
		// stream of creates made a synced Put wait 3-5 ms on average and
		// capped a node's create rate. Level 0 may grow further before
		// writes slow down; compaction still starts at 4 tables.
		WriteL0SlowdownTrigger: 24,
		WriteL0PauseTrigger:    48,
		CompactionL0Trigger:    12,
	}
}

// Open opens (creating if needed) the database in opts.Path. opts.NoSync
// turns off the fsync of each write; opts.Extra is ignored.
//
// If the directory is in use by another store, Open fails at once with an
// error matching storage.ErrLocked. If the manifest is corrupted, Open tries
// goleveldb's Recover before giving up, and logs that it did to
// opts.Logger. opts.OnCorrupt is called for each corrupt record Iterate
// moves aside.
func Open(opts storage.Options) (*Store, error) {
	return open(opts, hooks{})
}

// OpenStore is Open as a storage.Opener, for the "leveldb" backend.
func OpenStore(opts storage.Options) (storage.Store, error) {
	s, err := Open(opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// hooks are what tests change about open.
type hooks struct {
	// wrap, if set, wraps the file storage goleveldb runs on (for fault
	// injection).
	wrap func(lvstorage.Storage) lvstorage.Storage
}

func open(opts storage.Options, h hooks) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	dir := opts.Path
	if dir == "" {
		return nil, errors.New("leveldbstore: open: no path given (storage.Options.Path)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("leveldbstore: open: %w", err)
	}
	stor, err := lvstorage.OpenFile(dir, false)
	if err != nil {
		if isLockHeld(err) {
			return nil, &storage.LockedError{Path: dir, Err: err}
		}
		return nil, fmt.Errorf("leveldbstore: open %s: %w", dir, err)
	}
	if h.wrap != nil {
		stor = h.wrap(stor)
	}
	o := levelOptions()
	db, err := leveldb.Open(stor, o)
	if lverrors.IsCorrupted(err) {
		log.Warn("leveldbstore: database corrupted, recovering from table files", "path", dir, "err", err)
		var rerr error
		db, rerr = leveldb.Recover(stor, o)
		if rerr != nil {
			_ = stor.Close()
			return nil, fmt.Errorf("leveldbstore: open %s: database corrupted (%w) and recovery failed: %w", dir, err, rerr)
		}
		log.Warn("leveldbstore: database recovered", "path", dir)
		err = nil
	}
	if err != nil {
		_ = stor.Close()
		return nil, fmt.Errorf("leveldbstore: open %s: %w", dir, err)
	}
	return &Store{
		path:      dir,
		wo:        &opt.WriteOptions{Sync: !opts.NoSync},
		log:       log,
		onCorrupt: opts.OnCorrupt,
		db:        db,
		stor:      stor,
	}, nil
}

// Path returns the directory the store was opened in.
func (s *Store) Path() string { return s.path }

// acquire takes the read lock for one call; it fails if the store is closed
// or ctx is done. The caller must call s.mu.RUnlock when acquire returns nil.
func (s *Store) acquire(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("leveldbstore: %s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("leveldbstore: %s: %w", op, skyring.ErrClosed)
	}
	return nil
}

// writable returns the latched write failure, if any.
func (s *Store) writable() error {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// failed latches err, a write goleveldb refused, as the store's write
// failure and returns it wrapped to match storage.ErrWrite. Every error from
// a goleveldb write is a failure of the disk or of the database (journal,
// fsync, a compaction error it passes on); none is the caller's.
func (s *Store) failed(err error) error {
	latched := fmt.Errorf("%w (an earlier write failed; writes are refused until the store is reopened): %w",
		storage.ErrWrite, err)
	s.broken.CompareAndSwap(nil, &latched)
	return fmt.Errorf("%w: %w", storage.ErrWrite, err)
}

// bufPool holds scratch buffers for keys and encoded values.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

var batchPool = sync.Pool{New: func() any { return new(leveldb.Batch) }}

// appendRecord appends key ("t/"+id) then value to b and returns both
// (views of the returned buffer).
func appendRecord(b []byte, t *skyring.Timer) (buf, key, value []byte, err error) {
	b = append(b, timerPrefix...)
	b = append(b, t.ID...)
	k := len(b)
	b, err = t.AppendBinary(b)
	if err != nil {
		return b, nil, nil, fmt.Errorf("encode timer %q: %w", t.ID, err)
	}
	return b, b[:k:k], b[k:], nil
}

// Put stores the timers, replacing any with the same id, atomically (one
// goleveldb batch), and returns once the batch is fsynced (unless NoSync).
// A failed write is an error matching storage.ErrWrite, and so is every
// write after it.
func (s *Store) Put(ctx context.Context, timers ...*skyring.Timer) error {
	for _, t := range timers {
		if t == nil {
			return errors.New("leveldbstore: put: nil timer")
		}
	}
	if err := s.acquire(ctx, "put"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if len(timers) == 0 {
		return nil
	}
	if err := s.writable(); err != nil {
		return fmt.Errorf("leveldbstore: put: %w", err)
	}
	s.moveMu.RLock()
	defer s.moveMu.RUnlock()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)

	if len(timers) == 1 {
		buf, key, value, err := appendRecord((*bp)[:0], timers[0])
		*bp = buf
		if err != nil {
			return fmt.Errorf("leveldbstore: put: %w", err)
		}
		if err := s.db.Put(key, value, s.wo); err != nil {
			return fmt.Errorf("leveldbstore: put %q: %w", timers[0].ID, s.failed(err))
		}
		return nil
	}

	batch := batchPool.Get().(*leveldb.Batch)
	defer batchPool.Put(batch)
	batch.Reset()
	for _, t := range timers {
		buf, key, value, err := appendRecord((*bp)[:0], t)
		*bp = buf
		if err != nil {
			return fmt.Errorf("leveldbstore: put: %w", err)
		}
		batch.Put(key, value) // copies
	}
	if err := s.db.Write(batch, s.wo); err != nil {
		return fmt.Errorf("leveldbstore: put %d timers: %w", len(timers), s.failed(err))
	}
	return nil
}

// Delete removes the timers with these ids, atomically; a missing id is not
// an error. Records moved aside as corrupt stay. Write failures are as for
// Put.
func (s *Store) Delete(ctx context.Context, ids ...string) error {
	if err := s.acquire(ctx, "delete"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if len(ids) == 0 {
		return nil
	}
	if err := s.writable(); err != nil {
		return fmt.Errorf("leveldbstore: delete: %w", err)
	}
	s.moveMu.RLock()
	defer s.moveMu.RUnlock()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)

	if len(ids) == 1 {
		*bp = append(append((*bp)[:0], timerPrefix...), ids[0]...)
		if err := s.db.Delete(*bp, s.wo); err != nil {
			return fmt.Errorf("leveldbstore: delete %q: %w", ids[0], s.failed(err))
		}
		return nil
	}
	batch := batchPool.Get().(*leveldb.Batch)
	defer batchPool.Put(batch)
	batch.Reset()
	for _, id := range ids {
		*bp = append(append((*bp)[:0], timerPrefix...), id...)
		batch.Delete(*bp)
	}
	if err := s.db.Write(batch, s.wo); err != nil {
		return fmt.Errorf("leveldbstore: delete %d timers: %w", len(ids), s.failed(err))
	}
	return nil
}

// Get returns the stored timer, or an error matching
// skyring.ErrTimerNotFound, or one matching skyring.ErrCorrupt if the record
// does not decode or was moved aside because it did not.
func (s *Store) Get(ctx context.Context, id string) (*skyring.Timer, error) {
	if err := s.acquire(ctx, "get"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	key := []byte(timerPrefix + id)
	v, err := s.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		// Rare on the node's paths (it reads only timers it holds), so the
		// second lookup costs nothing that matters; the bloom filter
		// answers it without reading a table.
		moved, herr := s.db.Has(append([]byte(quarantinePrefix), key...), nil)
		switch {
		case herr != nil:
			return nil, fmt.Errorf("leveldbstore: get %q: %w", id, herr)
		case moved:
			return nil, fmt.Errorf("leveldbstore: get %q: the record did not decode and was moved aside: %w",
				id, skyring.ErrCorrupt)
		}
		return nil, fmt.Errorf("leveldbstore: get %q: %w", id, skyring.ErrTimerNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("leveldbstore: get %q: %w", id, err)
	}
	t := new(skyring.Timer)
	if err := t.UnmarshalBinary(v); err != nil {
		return nil, fmt.Errorf("leveldbstore: get %q: %w", id, err)
	}
	return t, nil
}

// Iterate calls fn once for each stored timer, in id order, and stops at the
// first error fn returns (returning it) or when ctx is done. It sees the
// timers stored when it began (a goleveldb iterator reads from a snapshot),
// streams them one at a time and does not fill the block cache.
//
// A record that cannot be decoded is not passed to fn: Iterate moves it
// aside, logs it, reports it to storage.Options.OnCorrupt and goes on (see
// the package documentation). If the move fails, Iterate stops with an
// error matching storage.ErrWrite.
//
// Close waits for a running Iterate to return.
func (s *Store) Iterate(ctx context.Context, fn func(*skyring.Timer) error) error {
	if err := s.acquire(ctx, "iterate"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	it := s.db.NewIterator(util.BytesPrefix([]byte(timerPrefix)), &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	n := 0
	for it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("leveldbstore: iterate: %w", err)
			}
		}
		t := new(skyring.Timer)
		if err := t.UnmarshalBinary(it.Value()); err != nil { // copies
			if err := s.moveAside(it.Key(), it.Value(), err); err != nil {
				return fmt.Errorf("leveldbstore: iterate: %w", err)
			}
			continue
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("leveldbstore: iterate: %w", err)
	}
	return nil
}

// List calls fn for each stored timer whose id sorts after after, in id
// order, and stops at the first error fn returns (returning it) or when ctx
// is done. Like Iterate it reads from a snapshot taken when it began,
// streams one timer at a time and does not fill the block cache. A record
// that cannot be decoded is skipped and logged; Iterate (at recovery) is
// what moves it aside.
func (s *Store) List(ctx context.Context, after string, fn func(*skyring.Timer) error) error {
	if err := s.acquire(ctx, "list"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	rng := util.BytesPrefix([]byte(timerPrefix))
	if after != "" {
		// The first key after timerPrefix+after: the same bytes plus 0x00.
		rng.Start = append([]byte(timerPrefix+after), 0)
	}
	it := s.db.NewIterator(rng, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	n := 0
	for it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("leveldbstore: list: %w", err)
			}
		}
		t := new(skyring.Timer)
		if err := t.UnmarshalBinary(it.Value()); err != nil {
			s.log.Error("leveldbstore: list: skipping a record that does not decode", "key", string(it.Key()), "err", err)
			continue
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("leveldbstore: list: %w", err)
	}
	return nil
}

// moveAside moves the record under key, whose value bad Iterate could not
// decode (derr), to quarantinePrefix+key in one batch written like any
// other, then logs it and reports it to onCorrupt. If a writer replaced or
// removed the record since Iterate's snapshot, there is nothing to move.
func (s *Store) moveAside(key, bad []byte, derr error) error {
	id := string(key[len(timerPrefix):])
	if err := s.writable(); err != nil {
		return fmt.Errorf("moving undecodable record %q aside: %w", key, err)
	}
	s.moveMu.Lock()
	defer s.moveMu.Unlock()
	cur, err := s.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) || (err == nil && !bytes.Equal(cur, bad)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("moving undecodable record %q aside: %w", key, err)
	}
	qkey := append([]byte(quarantinePrefix), key...)
	batch := new(leveldb.Batch)
	batch.Delete(key)
	batch.Put(qkey, bad)
	if err := s.db.Write(batch, s.wo); err != nil {
		return fmt.Errorf("moving undecodable record %q aside: %w", key, s.failed(err))
	}
	s.log.Error("leveldbstore: a stored timer cannot be decoded; it was moved aside and will not fire",
		"timer_id", id, "moved_to", string(qkey), "size", len(bad), "path", s.path, "err", derr)
	if s.onCorrupt != nil {
		s.onCorrupt(id, derr)
	}
	return nil
}

// Quarantined calls fn for each record Iterate moved aside, in id order,
// with the timer id and the bytes as they were stored (fn may keep them),
// and stops at the first error fn returns (returning it) or when ctx is
// done. The records stay until removed by hand: they are evidence of a lost
// timer, and the node never reads them.
func (s *Store) Quarantined(ctx context.Context, fn func(id string, raw []byte) error) error {
	if err := s.acquire(ctx, "quarantined"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	prefix := quarantinePrefix + timerPrefix
	it := s.db.NewIterator(util.BytesPrefix([]byte(prefix)), &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("leveldbstore: quarantined: %w", err)
		}
		if err := fn(string(it.Key()[len(prefix):]), bytes.Clone(it.Value())); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("leveldbstore: quarantined: %w", err)
	}
	return nil
}

// Meta returns the value stored under key, or nil, nil if the key was never
// set. A key set to an empty value returns an empty, non-nil slice.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	if err := s.acquire(ctx, "meta"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v, err := s.db.Get([]byte(metaPrefix+key), nil) // a copy
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("leveldbstore: meta %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// SetMeta stores value under key, durably (unless NoSync). Write failures
// are as for Put.
func (s *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	if err := s.acquire(ctx, "set meta"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.writable(); err != nil {
		return fmt.Errorf("leveldbstore: set meta %q: %w", key, err)
	}
	if err := s.db.Put([]byte(metaPrefix+key), value, s.wo); err != nil {
		return fmt.Errorf("leveldbstore: set meta %q: %w", key, s.failed(err))
	}
	return nil
}

// Close waits for running calls to return, then closes the database and
// releases the directory lock. Later calls return an error matching
// skyring.ErrClosed. Close is idempotent; only the first call can return an
// error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.db.Close()
	if serr := s.stor.Close(); err == nil {
		err = serr
	}
	s.db, s.stor = nil, nil
	if err != nil {
		return fmt.Errorf("leveldbstore: close %s: %w", s.path, err)
	}
	return nil
}
