package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

var _ storage.Versioned = (*Store)(nil)

// zeroAttempts bounds the writes PutIf and DeleteIf try with an expected
// version of 0 (see resolveAbsent).
const zeroAttempts = 3

// GetVersion returns the stored timer and its version: the stream sequence
// of the message under the timer's subject. A tombstone is no record: it
// gives an error matching skyring.ErrTimerNotFound and version 0. A record
// that does not decode gives an error matching skyring.ErrCorrupt and its
// version (0 if it was moved aside). It reads from the stream leader, like
// Get.
func (s *Store) GetVersion(ctx context.Context, id string) (*skyring.Timer, uint64, error) {
	if err := s.acquire(ctx, "get version"); err != nil {
		return nil, 0, err
	}
	defer s.mu.RUnlock()
	return s.get(ctx, "get version", id)
}

// PutIf stores t only if the record under t.ID is still at version expect,
// and returns the new version (the sequence in the PubAck). It is a single
// asynchronous publish, pipelined with other callers' writes like Put,
// with the header Nats-Expected-Last-Subject-Sequence: JetStream itself
// refuses it if the subject's last message is another one, and that
// refusal is returned as an error matching storage.ErrConflict (nothing
// was written).
//
// expect 0 means "no record": nothing stored under the subject, or a
// tombstone (a deleted timer; its message stays in the stream for
// TombstoneTTL). JetStream's check compares with the subject's last
// message, tombstone or not, so PutIf first reads that message: a
// tombstone's sequence is what it expects instead of 0, a live record is
// a conflict. If the tombstone expires or is replaced by another
// tombstone between the read and the write, the write is refused and
// PutIf reads and tries again, at most zeroAttempts times in all; each
// write it sends is conditioned on a state it read as "no record".
//
// On a replicated stream, JetStream also refuses the check (error code
// 10164) while another write to the same subject is being proposed; that
// too is ErrConflict, even if the other write turns out to leave no record.
func (s *Store) PutIf(ctx context.Context, t *skyring.Timer, expect uint64) (uint64, error) {
	if t == nil {
		return 0, errors.New("jsstore: put-if: nil timer")
	}
	if err := s.acquire(ctx, "put-if"); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	seq, err := s.writeIf(ctx, t.ID, expect, func() (*nats.Msg, error) { return s.timerMsg(t) })
	if err != nil {
		return 0, fmt.Errorf("jsstore: put-if %q at version %d: %w", t.ID, expect, err)
	}
	return seq, nil
}

// DeleteIf removes id (writes a tombstone) only if its record is still at
// version expect, else fails with an error matching storage.ErrConflict
// and writes nothing. expect 0 is as in PutIf: it succeeds only if no
// record is stored, and then writes a tombstone (as Delete of a missing id
// does) conditioned on that.
func (s *Store) DeleteIf(ctx context.Context, id string, expect uint64) error {
	if err := s.acquire(ctx, "delete-if"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	_, err := s.writeIf(ctx, id, expect, func() (*nats.Msg, error) { return s.tombstone(s.l.timer(id)), nil })
	if err != nil {
		return fmt.Errorf("jsstore: delete-if %q at version %d: %w", id, expect, err)
	}
	return nil
}

// writeIf publishes the message msg builds (a new one for each attempt:
// the header is set on it) conditioned on the version of id's record, and
// returns its sequence.
func (s *Store) writeIf(ctx context.Context, id string, expect uint64, msg func() (*nats.Msg, error)) (uint64, error) {
	subject := s.l.timer(id)
	for attempt := 1; ; attempt++ {
		want := expect
		if expect == 0 {
			last, err := s.resolveAbsent(ctx, subject)
			if err != nil {
				return 0, err
			}
			want = last
		}
		m, err := msg()
		if err != nil {
			return 0, err
		}
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(want, 10))
		ack, err := s.publish(ctx, m)
		switch {
		case err == nil:
			return ack.Sequence, nil
		case !isWrongLastSequence(err):
			return 0, err
		case expect == 0 && attempt < zeroAttempts:
			continue // the "no record" changed form (a tombstone expired or replaced): read again
		}
		return 0, fmt.Errorf("%w (the record changed: %w)", storage.ErrConflict, err)
	}
}

// resolveAbsent returns the sequence a write that expects no record under
// subject must expect: 0 if the subject has no message, the tombstone's if
// its last message is one. A live record is a conflict.
func (s *Store) resolveAbsent(ctx context.Context, subject string) (uint64, error) {
	m, err := s.last(ctx, subject)
	switch {
	case err != nil:
		return 0, err
	case m == nil:
		return 0, nil
	case isTombstone(m.Header):
		return m.Sequence, nil
	}
	return 0, fmt.Errorf("%w (a record is stored, version %d)", storage.ErrConflict, m.Sequence)
}

// isWrongLastSequence reports whether err is JetStream's refusal of an
// expected last sequence: code 10071 (JSStreamWrongLastSequenceErrF), or
// 10164 (JSStreamWrongLastSequenceConstantErr), which a replicated stream
// returns while another write to the subject is in flight.
func isWrongLastSequence(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		var jerr jetstream.JetStreamError
		if !errors.As(err, &jerr) || jerr.APIError() == nil {
			return false
		}
		api = jerr.APIError()
	}
	return api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
