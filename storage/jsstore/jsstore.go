// Package jsstore is a storage.Store on NATS JetStream: timers kept in a
// stream that JetStream replicates (R3 on a cluster, R1 on a single
// server), so that they outlive the disk of the node that owns them.
//
// It is the store of the node's jetstream backend (--storage:backend
// jetstream), which opens it on the node's own NATS connection; the caller
// opens it with a connection it already has (Options.Conn), not a URL.
//
// # Layout
//
// One stream (StreamName of the prefix, "SKYRING" by default) holds every
// subject under the prefix, with at most one message per subject, like a
// JetStream KV bucket:
//
//	<prefix>.<partition>.<hex id>   a timer (skyring.Timer.AppendBinary)
//	<prefix>.meta.<hex key>         a node-level value (Store.Meta)
//	<prefix>.corrupt.<hex id>       a record moved aside as corrupt
//
// The partition is Partition(id), one of a fixed 1,024, so that the timers
// of one partition can be loaded by subject filter (IteratePartition) when
// an owner takes a range over. Ids are hex-encoded (EncodeID): subject-safe,
// and hex keeps byte order.
//
// A plain stream is used rather than a KV bucket because the KV API has no
// multi-key atomic write: Put and Delete of several timers use JetStream's
// atomic batch publish (nats-server 2.12 and later), which works on any
// stream with AllowAtomicPublish, and the KV bucket's stream is managed by
// the KV API. A deleted timer is a tombstone (header Skyring-Op: DEL, with a
// per-message TTL so it vanishes soon after), written like a value, so that
// a delete of several ids is one atomic batch too.
//
// # Acknowledgement
//
// Every write returns only after JetStream's PubAck: on a replicated stream
// that means a quorum of its servers stored it. Single-timer Puts and
// Deletes from concurrent callers are pipelined on one connection
// (asynchronous publish, at most Options.Window awaiting their PubAck);
// each caller still waits for its own PubAck. Writes of several timers are
// one atomic batch: JetStream applies all of the batch or none of it, and
// readers never see a part.
//
// Limits: an atomic batch holds at most the server's max_batch_size
// messages (jetstream { limits { max_batch_size } }, 1,000 by default). The
// store is told that limit (Options.MaxBatch); a larger Put or Delete fails
// with ErrBatchTooLarge and writes nothing. The storage contract has no
// size limit on an atomic Put (the conformance suite writes 5,000 at once),
// so a node that embeds its servers raises max_batch_size to match (the
// tests run with 10,000); on an existing cluster, MaxBatch must not exceed
// the cluster's setting. The node's own batches (hand-offs) are at most
// 1,000 timers. At most MaxInflightBatches batches
// of one store are open at once (the server allows 50 per stream).
//
// # Write failures
//
// A write JetStream refused (an API error in the PubAck) wrote nothing and
// is returned as is. A write whose outcome is unknown (no PubAck in time,
// the connection lost) matches storage.ErrWrite. Unlike leveldbstore, the
// store does not latch that failure: a lost PubAck on a replicated stream
// does not tear a journal, and the next write (once a quorum is back) is
// as good as any. Whether the node fail-stops on it is for the wiring step
// to decide.
//
// # Conditional writes
//
// The store is a storage.Versioned, for nodes that share the stream: a
// record's version is the stream sequence of its message, and PutIf and
// DeleteIf are single pipelined publishes with JetStream's
// Nats-Expected-Last-Subject-Sequence header, which the stream leader
// checks against the subject's last message (a refusal is
// storage.ErrConflict). A tombstone is no record (version 0), though it
// is the subject's last message until it expires: a write expecting 0
// reads the subject first and expects the tombstone's sequence (see
// PutIf).
//
// # Reads
//
// Get reads from the stream leader (the stream does not allow direct gets,
// which a follower may answer from behind), so a read follows every
// acknowledged write. Iterate and IteratePartition read with an ordered
// consumer until they are caught up with the stream, so a timer stored
// before they began is never missed; one replaced while they run may be
// seen twice (its old and its new record).
//
// JetStream applies an atomic batch whole, but stores its messages one by
// one, and a consumer may read the first before the last is stored. So a
// scan that catches up on a message of a batch whose commit (last) message
// it has not seen reads the stream on by sequence until that batch is
// stored whole, then reads on: a reader never sees a part of a batch. List reads the sorted subject
// names (ids only) and then each timer.
package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// Defaults of Options.
const (
	DefaultPrefix  = "skyring"
	DefaultWindow  = 256
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBatch is the largest Put or Delete of several timers
	// unless Options.MaxBatch says otherwise: the server's default atomic
	// batch size.
	DefaultMaxBatch = 1000
	// MaxInflightBatches bounds the atomic batches one store has open.
	MaxInflightBatches = 32
	// TombstoneTTL is how long a delete's tombstone stays in the stream.
	TombstoneTTL = time.Minute
)

const (
	opHeader = "Skyring-Op"
	opDelete = "DEL"

	batchIDHeader  = "Nats-Batch-Id"
	batchSeqHeader = "Nats-Batch-Sequence"
	batchCommit    = "Nats-Batch-Commit"
)

// ErrBatchTooLarge: a Put or Delete of more than Options.MaxBatch timers.
// Nothing was written.
var ErrBatchTooLarge = errors.New("jsstore: batch too large")

// Options are what a Store is opened with.
type Options struct {
	// Conn is the connection to a JetStream-enabled server or cluster. The
	// store does not close it. Required.
	Conn *nats.Conn
	// Prefix is the subject prefix (DefaultPrefix if empty); the stream is
	// StreamName(Prefix).
	Prefix string
	// Replicas is the stream's replica count: 1, or 3 on a cluster of
	// three or more servers. 0 means 1. An existing stream is updated to
	// it.
	Replicas int
	// Memory keeps the stream in memory rather than in files (for tests).
	Memory bool
	// Window bounds the single-timer writes awaiting their PubAck
	// (DefaultWindow if 0).
	Window int
	// MaxBatch is the largest Put or Delete of several timers; it must not
	// exceed the servers' max_batch_size (DefaultMaxBatch if 0).
	MaxBatch int
	// Timeout bounds the wait for a PubAck or a read when the context has
	// no earlier deadline (DefaultTimeout if 0).
	Timeout time.Duration
	// Logger and OnCorrupt are as in storage.Options.
	Logger    *slog.Logger
	OnCorrupt func(id string, err error)
}

// Store is a storage.Store on a JetStream stream. Open it with Open.
type Store struct {
	js        jetstream.JetStream
	nc        *nats.Conn
	stream    jetstream.Stream
	name      string
	l         layout
	timeout   time.Duration
	log       *slog.Logger
	onCorrupt func(id string, err error)
	batches   chan struct{} // semaphore of open atomic batches
	window    chan struct{} // semaphore of single writes awaiting a PubAck
	maxBatch  int

	// mu guards closed: every call holds a read lock while it runs, so
	// Close (write lock) waits for running calls.
	mu     sync.RWMutex
	closed bool
}

var _ storage.Store = (*Store)(nil)

// Open creates or updates the stream and returns the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Conn == nil {
		return nil, errors.New("jsstore: open: no connection")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if err := validPrefix(opts.Prefix); err != nil {
		return nil, err
	}
	switch opts.Replicas {
	case 0:
		opts.Replicas = 1
	case 1, 3:
	default:
		return nil, fmt.Errorf("jsstore: open: replicas must be 1 or 3, not %d", opts.Replicas)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	js, err := jetstream.New(opts.Conn,
		// The store's own window (Store.window) admits writers; the
		// client's is larger so that it never stalls and fails one.
		jetstream.WithPublishAsyncMaxPending(2*opts.Window),
		jetstream.WithPublishAsyncTimeout(opts.Timeout))
	if err != nil {
		return nil, fmt.Errorf("jsstore: open: %w", err)
	}
	name := StreamName(opts.Prefix)
	l := layout{prefix: opts.Prefix}
	st := jetstream.FileStorage
	if opts.Memory {
		st = jetstream.MemoryStorage
	}
	cfg := jetstream.StreamConfig{
		Name:               name,
		Description:        "Skyring timers",
		Subjects:           []string{l.all()},
		Retention:          jetstream.LimitsPolicy,
		MaxMsgsPerSubject:  1,
		Discard:            jetstream.DiscardOld,
		Storage:            st,
		Replicas:           opts.Replicas,
		Duplicates:         2 * time.Minute,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true,
	}
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("jsstore: open: stream %s: %w", name, err)
	}
	if err := waitLeader(cctx, stream); err != nil {
		return nil, fmt.Errorf("jsstore: open: stream %s: %w", name, err)
	}
	return &Store{
		js:        js,
		nc:        opts.Conn,
		stream:    stream,
		name:      name,
		l:         l,
		timeout:   opts.Timeout,
		log:       opts.Logger,
		onCorrupt: opts.OnCorrupt,
		batches:   make(chan struct{}, MaxInflightBatches),
		window:    make(chan struct{}, opts.Window),
		maxBatch:  opts.MaxBatch,
	}, nil
}

// waitLeader waits until the stream has a leader, bounded by ctx. A newly
// created replicated stream elects one a moment after the create returns,
// and a write before that finds no responder: Open returns a store whose
// first write can succeed.
func waitLeader(ctx context.Context, stream jetstream.Stream) error {
	for {
		info, err := stream.Info(ctx)
		if err == nil && (info.Cluster == nil || info.Cluster.Leader != "") {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("no leader elected")
			}
			return fmt.Errorf("waiting for a leader: %w (%w)", context.Cause(ctx), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StreamName returns the name of the store's stream.
func (s *Store) StreamName() string { return s.name }

// Stream returns the store's stream, for its state and cluster information.
func (s *Store) Stream() jetstream.Stream { return s.stream }

// acquire takes the read lock for one call; the caller must call
// s.mu.RUnlock when it returns nil.
func (s *Store) acquire(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("jsstore: %s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("jsstore: %s: %w", op, skyring.ErrClosed)
	}
	return nil
}

// bounded returns ctx with the store's timeout unless it has an earlier
// deadline.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < s.timeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// writeErr classifies a failed write: a JetStream API error wrote nothing;
// anything else (no PubAck in time, a lost connection, a done context after
// the message left) may have written, and matches storage.ErrWrite.
func writeErr(err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return err
	}
	var jerr jetstream.JetStreamError
	if errors.As(err, &jerr) && jerr.APIError() != nil {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrWrite, err)
}

func (s *Store) timerMsg(t *skyring.Timer) (*nats.Msg, error) {
	data, err := t.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("encode timer %q: %w", t.ID, err)
	}
	return &nats.Msg{Subject: s.l.timer(t.ID), Data: data, Header: nats.Header{}}, nil
}

func (s *Store) tombstone(subject string) *nats.Msg {
	h := nats.Header{}
	h.Set(opHeader, opDelete)
	h.Set(jetstream.MsgTTLHeader, TombstoneTTL.String())
	return &nats.Msg{Subject: subject, Header: h}
}

// Put stores the timers, replacing any with the same id, atomically, and
// returns once JetStream acknowledged the write (on a replicated stream: a
// quorum stored it). One timer is an asynchronous publish pipelined with
// other callers'; several are one atomic batch (at most Options.MaxBatch).
func (s *Store) Put(ctx context.Context, timers ...*skyring.Timer) error {
	for _, t := range timers {
		if t == nil {
			return errors.New("jsstore: put: nil timer")
		}
	}
	if err := s.acquire(ctx, "put"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if len(timers) > s.maxBatch {
		return fmt.Errorf("jsstore: put %d timers: %w (at most %d)", len(timers), ErrBatchTooLarge, s.maxBatch)
	}
	msgs := make([]*nats.Msg, 0, len(timers))
	for _, t := range timers {
		m, err := s.timerMsg(t)
		if err != nil {
			return fmt.Errorf("jsstore: put: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := s.write(ctx, msgs); err != nil {
		return fmt.Errorf("jsstore: put %d timers: %w", len(timers), err)
	}
	return nil
}

// Delete removes the timers with these ids, atomically (tombstones, one
// atomic batch if several); a missing id is not an error. Records moved
// aside as corrupt stay.
func (s *Store) Delete(ctx context.Context, ids ...string) error {
	if err := s.acquire(ctx, "delete"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if len(ids) > s.maxBatch {
		return fmt.Errorf("jsstore: delete %d timers: %w (at most %d)", len(ids), ErrBatchTooLarge, s.maxBatch)
	}
	msgs := make([]*nats.Msg, 0, len(ids))
	for _, id := range ids {
		msgs = append(msgs, s.tombstone(s.l.timer(id)))
	}
	if err := s.write(ctx, msgs); err != nil {
		return fmt.Errorf("jsstore: delete %d timers: %w", len(ids), err)
	}
	return nil
}

// write publishes msgs: nothing for none, one asynchronously, several as
// an atomic batch. It returns once JetStream acknowledged them.
func (s *Store) write(ctx context.Context, msgs []*nats.Msg) error {
	switch len(msgs) {
	case 0:
		return nil
	case 1:
		_, err := s.publish(ctx, msgs[0])
		return err
	default:
		return s.publishBatch(ctx, msgs)
	}
}

// publish sends one message with an asynchronous publish (bounded by
// Options.Window) and waits for its PubAck, which it returns.
func (s *Store) publish(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	select {
	case s.window <- struct{}{}:
		defer func() { <-s.window }()
	case <-ctx.Done():
		return nil, ctx.Err() // nothing sent
	}
	f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(s.name))
	if err != nil {
		return nil, writeErr(err)
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, writeErr(err)
	case <-ctx.Done():
		return nil, writeErr(ctx.Err())
	}
}

// pubAckResponse is JetStream's answer to a publish.
type pubAckResponse struct {
	Error *jetstream.APIError `json:"error,omitempty"`
	jetstream.PubAck
	BatchID   string `json:"batch,omitempty"`
	BatchSize int    `json:"count,omitempty"`
}

// publishBatch sends msgs as one JetStream atomic batch: every message
// carries the batch id and its sequence, the last one the commit and a
// reply subject; the server stages the others and applies all of them, or
// none, when the commit arrives.
func (s *Store) publishBatch(ctx context.Context, msgs []*nats.Msg) error {
	select {
	case s.batches <- struct{}{}:
		defer func() { <-s.batches }()
	case <-ctx.Done():
		return ctx.Err() // nothing sent
	}
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i == len(msgs)-1 {
			break
		}
		if err := s.nc.PublishMsg(m); err != nil {
			return fmt.Errorf("batch %s: %w", id, writeErr(err))
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(batchCommit, "1")
	last.Header.Set(jetstream.ExpectedStreamHeader, s.name)
	rctx, cancel := s.bounded(ctx)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(rctx, last)
	if err != nil {
		return fmt.Errorf("batch %s: %w", id, writeErr(err))
	}
	var ack pubAckResponse
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("batch %s: %w", id, writeErr(fmt.Errorf("bad PubAck %q: %w", resp.Data, err)))
	}
	if ack.Error != nil {
		return fmt.Errorf("batch %s: %w", id, ack.Error)
	}
	if ack.BatchSize != 0 && ack.BatchSize != len(msgs) {
		return fmt.Errorf("batch %s: %w", id, writeErr(fmt.Errorf("PubAck counts %d messages, sent %d", ack.BatchSize, len(msgs))))
	}
	return nil
}

// last returns the message stored under subject, or nil.
func (s *Store) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	rctx, cancel := s.bounded(ctx)
	defer cancel()
	m, err := s.stream.GetLastMsgForSubject(rctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func isTombstone(h nats.Header) bool { return h.Get(opHeader) == opDelete }

// Get returns the stored timer, or an error matching
// skyring.ErrTimerNotFound, or one matching skyring.ErrCorrupt if the record
// does not decode or was moved aside because it did not.
func (s *Store) Get(ctx context.Context, id string) (*skyring.Timer, error) {
	if err := s.acquire(ctx, "get"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	t, _, err := s.get(ctx, "get", id)
	return t, err
}

// get is Get, and returns the record's version too: the stream sequence of
// the message under the timer's subject, 0 if there is none or it is a
// tombstone.
func (s *Store) get(ctx context.Context, op, id string) (*skyring.Timer, uint64, error) {
	m, err := s.last(ctx, s.l.timer(id))
	if err != nil {
		return nil, 0, fmt.Errorf("jsstore: %s %q: %w", op, id, err)
	}
	if m == nil || isTombstone(m.Header) {
		moved, err := s.last(ctx, s.l.corrupt(id))
		switch {
		case err != nil:
			return nil, 0, fmt.Errorf("jsstore: %s %q: %w", op, id, err)
		case moved != nil && !isTombstone(moved.Header):
			return nil, 0, fmt.Errorf("jsstore: %s %q: the record did not decode and was moved aside: %w",
				op, id, skyring.ErrCorrupt)
		}
		return nil, 0, fmt.Errorf("jsstore: %s %q: %w", op, id, skyring.ErrTimerNotFound)
	}
	t := new(skyring.Timer)
	if err := t.UnmarshalBinary(m.Data); err != nil {
		return nil, m.Sequence, fmt.Errorf("jsstore: %s %q: %w", op, id, err)
	}
	return t, m.Sequence, nil
}

// Iterate calls fn once for each stored timer, in no set order, and stops
// at the first error fn returns (returning it) or when ctx is done. It
// reads until it has caught up with the stream: a timer stored before it
// began is never missed, one replaced while it runs may be seen twice.
//
// A record that cannot be decoded is not passed to fn: Iterate moves it
// aside (one atomic batch: the bytes to <prefix>.corrupt.<id>, a tombstone
// to the timer's subject), logs it, reports it to Options.OnCorrupt and
// goes on. If the move fails, Iterate stops with its error.
func (s *Store) Iterate(ctx context.Context, fn func(*skyring.Timer) error) error {
	if err := s.acquire(ctx, "iterate"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.scan(ctx, s.l.all(), s.l.prefix+".", fn); err != nil {
		return fmt.Errorf("jsstore: iterate: %w", err)
	}
	return nil
}

// IteratePartition is Iterate restricted to the timers of one partition
// (Partition(id) == p): what a new owner loads when it takes the partition
// over.
func (s *Store) IteratePartition(ctx context.Context, p int, fn func(*skyring.Timer) error) error {
	if p < 0 || p >= Partitions {
		return fmt.Errorf("jsstore: iterate partition %d: out of range [0, %d)", p, Partitions)
	}
	if err := s.acquire(ctx, "iterate partition"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.scan(ctx, s.l.partition(p), s.l.prefix+"."+strconv.Itoa(p)+".", fn); err != nil {
		return fmt.Errorf("jsstore: iterate partition %d: %w", p, err)
	}
	return nil
}

// scanBatch is how many messages scan asks for at once.
const scanBatch = 512

// scanIdle is how long scan waits for a message it was told is pending
// before it asks the server again (the message may have been deleted).
const scanIdle = time.Second

// scan reads every message matching filter with an ordered consumer, from
// the first until none is pending, and calls fn with each timer. within is
// the prefix of the subjects filter matches (filter is within+">" or
// within+"*", and tokens after within hold no dot).
func (s *Store) scan(ctx context.Context, filter, within string, fn func(*skyring.Timer) error) error {
	cctx, cancel := s.bounded(ctx)
	cons, err := s.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	cancel()
	if err != nil {
		return err
	}
	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(scanBatch))
	if err != nil {
		return err
	}
	defer it.Stop()
	// expect counts the messages of a batch that settle found still to
	// come (they may already sit in the consumer's buffer, where the
	// server no longer counts them as pending).
	expect := 0
	for pending > 0 || expect > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := it.Next(jetstream.NextMaxWait(scanIdle)) // ctx is checked between messages
		switch {
		case errors.Is(err, nats.ErrTimeout):
			// The pending messages may have been deleted before they
			// came: ask the server what is left.
			info, err := cons.Info(ctx)
			if err != nil {
				return err
			}
			pending, expect = info.NumPending, 0
			continue
		case err != nil:
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		pending = meta.NumPending
		expect = max(0, expect-1)
		if err := s.deliver(ctx, m, fn); err != nil {
			return err
		}
		if pending > 0 || expect > 0 {
			continue
		}
		// Caught up. If the last message is part of an atomic batch
		// whose commit is not stored yet, the rest of that batch is
		// being written right now (JetStream applies a batch whole but
		// stores its messages one by one): wait for it, then read on.
		batch := m.Headers().Get(batchIDHeader)
		if batch == "" || m.Headers().Get(batchCommit) != "" {
			continue
		}
		expect, err = s.settle(ctx, batch, meta.Sequence.Stream+1, within)
		if err != nil {
			return err
		}
	}
	return nil
}

// settle waits until the atomic batch id, of which the message just before
// stream sequence seq is a part, is stored whole: it reads the stream by
// sequence from seq (whatever the subject) until the batch's commit
// message, a message of another batch or of none (the rest of the batch
// was replaced since), or the end of the stream with nothing left to come.
// It returns how many of the batch's messages from seq on have a subject
// that starts with within (those the scan still has to read).
func (s *Store) settle(ctx context.Context, id string, seq uint64, within string) (int, error) {
	n := 0
	wait := time.Millisecond
	deadline := time.Now().Add(s.timeout)
	for {
		rctx, cancel := s.bounded(ctx)
		m, err := s.stream.GetMsg(rctx, seq)
		cancel()
		switch {
		case err == nil:
			if m.Header.Get(batchIDHeader) != id {
				return n, nil
			}
			if strings.HasPrefix(m.Subject, within) {
				n++
			}
			if m.Header.Get(batchCommit) != "" {
				return n, nil
			}
			seq++
			continue
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return 0, fmt.Errorf("settle batch %s: %w", id, err)
		}
		info, err := s.stream.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("settle batch %s: %w", id, err)
		}
		if seq <= info.State.LastSeq {
			seq++ // deleted or replaced since
			continue
		}
		// Not stored yet: the batch is being applied. Poll, bounded.
		if time.Now().After(deadline) {
			return n, nil // the rest is gone (expired, purged): nothing to wait for
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// deliver decodes one scanned message and passes it to fn; tombstones,
// meta and corrupt records are skipped, and an undecodable timer is moved
// aside.
func (s *Store) deliver(ctx context.Context, m jetstream.Msg, fn func(*skyring.Timer) error) error {
	id, ok := s.l.timerID(m.Subject())
	if !ok || isTombstone(m.Headers()) {
		return nil
	}
	t := new(skyring.Timer)
	if derr := t.UnmarshalBinary(m.Data()); derr != nil {
		return s.moveAside(ctx, id, m.Data(), derr)
	}
	return fn(t)
}

// moveAside keeps an undecodable record under the corrupt subject and
// tombstones the timer's subject, in one atomic batch.
func (s *Store) moveAside(ctx context.Context, id string, raw []byte, derr error) error {
	keep := &nats.Msg{Subject: s.l.corrupt(id), Data: slices.Clone(raw), Header: nats.Header{}}
	if err := s.publishBatch(ctx, []*nats.Msg{keep, s.tombstone(s.l.timer(id))}); err != nil {
		return fmt.Errorf("move corrupt record %q aside: %w", id, err)
	}
	if !errors.Is(derr, skyring.ErrCorrupt) {
		derr = fmt.Errorf("%w: %w", skyring.ErrCorrupt, derr)
	}
	s.log.Error("jsstore: timer record does not decode; moved aside",
		slog.String("id", id), slog.String("stream", s.name), slog.Any("err", derr))
	if s.onCorrupt != nil {
		s.onCorrupt(id, derr)
	}
	return nil
}

// List calls fn for each stored timer whose id sorts after after, in
// ascending byte order of id, and stops at the first error fn returns
// (returning it) or when ctx is done. It reads the stream's subject names
// (ids only, not timers), sorts them, and reads each timer in turn.
func (s *Store) List(ctx context.Context, after string, fn func(*skyring.Timer) error) error {
	if err := s.acquire(ctx, "list"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	ids, err := s.ids(ctx)
	if err != nil {
		return fmt.Errorf("jsstore: list: %w", err)
	}
	slices.Sort(ids)
	start, _ := slices.BinarySearch(ids, after)
	for _, id := range ids[start:] {
		if id == after {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("jsstore: list: %w", err)
		}
		m, err := s.last(ctx, s.l.timer(id))
		if err != nil {
			return fmt.Errorf("jsstore: list: %q: %w", id, err)
		}
		if m == nil || isTombstone(m.Header) {
			continue
		}
		t := new(skyring.Timer)
		if t.UnmarshalBinary(m.Data) != nil {
			continue // Iterate moves it aside
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// ids returns the ids of the timer subjects in the stream (tombstoned ones
// included; List skips them when it reads them).
func (s *Store) ids(ctx context.Context) ([]string, error) {
	rctx, cancel := s.bounded(ctx)
	defer cancel()
	info, err := s.stream.Info(rctx, jetstream.WithSubjectFilter(s.l.prefix+".*.*"))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		if id, ok := s.l.timerID(subj); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Meta returns the value stored under key, or nil, nil.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	if err := s.acquire(ctx, "meta"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	m, err := s.last(ctx, s.l.meta(key))
	if err != nil {
		return nil, fmt.Errorf("jsstore: meta %q: %w", key, err)
	}
	if m == nil || isTombstone(m.Header) {
		return nil, nil
	}
	return append([]byte{}, m.Data...), nil
}

// SetMeta stores value under key, acknowledged like Put.
func (s *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	if err := s.acquire(ctx, "set meta"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	m := &nats.Msg{Subject: s.l.meta(key), Data: slices.Clone(value), Header: nats.Header{}}
	if _, err := s.publish(ctx, m); err != nil {
		return fmt.Errorf("jsstore: set meta %q: %w", key, err)
	}
	return nil
}

// Close waits for running calls and releases the store; the stream and
// the connection stay. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
