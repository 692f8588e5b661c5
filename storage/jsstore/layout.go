package jsstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/skyring/skyring/ring"
)

// Partitions is the fixed number of partitions timers are grouped in. It is
// part of the stored layout: a store written with one count cannot be read
// with another, so it is a constant, not an option.
const Partitions = 1024

// Partition returns the partition of a timer id, in [0, Partitions):
// ring.PartitionOf(id, Partitions), the one function the node places
// partitions with (FNV-1a 64 and fmix64, modulo the count; pinned by tests
// in both packages). It is part of the stored layout.
func Partition(id string) int {
	return ring.PartitionOf(id, Partitions)
}

// ErrBadToken: a subject token is not one EncodeID produced.
var ErrBadToken = errors.New("jsstore: bad subject token")

// EncodeID returns a subject-safe token for an id (or a meta key): its
// bytes in lower-case hex. Hex keeps the byte order of ids (so a sorted
// list of tokens is a sorted list of ids), uses no character a NATS subject
// reserves ('.', '*', '>', white space), and is never empty ("" encodes as
// "_"). An id of skyring.MaxIDLen (256) bytes makes a 512-byte token.
func EncodeID(id string) string {
	if id == "" {
		return "_"
	}
	return hex.EncodeToString([]byte(id))
}

// DecodeID reverses EncodeID.
func DecodeID(token string) (string, error) {
	if token == "_" {
		return "", nil
	}
	if token == "" || strings.ToLower(token) != token {
		return "", fmt.Errorf("%w: %q", ErrBadToken, token)
	}
	b, err := hex.DecodeString(token)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrBadToken, token, err)
	}
	return string(b), nil
}

// layout names the subjects of one store. Timers live under
// <prefix>.<partition>.<token>, node-level values under
// <prefix>.meta.<token>, records moved aside as corrupt under
// <prefix>.corrupt.<token>; a partition is decimal, so the three never
// overlap.
type layout struct{ prefix string }

func (l layout) timer(id string) string {
	return l.prefix + "." + strconv.Itoa(Partition(id)) + "." + EncodeID(id)
}
func (l layout) partition(p int) string { return l.prefix + "." + strconv.Itoa(p) + ".*" }
func (l layout) meta(key string) string { return l.prefix + ".meta." + EncodeID(key) }
func (l layout) corrupt(id string) string {
	return l.prefix + ".corrupt." + EncodeID(id)
}
func (l layout) all() string { return l.prefix + ".>" }

// timerID returns the id of a timer subject, and false for any other
// subject of the store (meta, corrupt).
func (l layout) timerID(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, l.prefix+".")
	if !ok {
		return "", false
	}
	p, token, ok := strings.Cut(rest, ".")
	if !ok || p == "" || p[0] < '0' || p[0] > '9' {
		return "", false
	}
	id, err := DecodeID(token)
	if err != nil {
		return "", false
	}
	return id, true
}

// StreamName returns the name of the stream for a subject prefix: the
// prefix upper-cased with dots made underscores ("skyring.timers" is
// "SKYRING_TIMERS").
func StreamName(prefix string) string {
	return strings.ToUpper(strings.ReplaceAll(prefix, ".", "_"))
}

// validPrefix reports whether prefix is one or more subject tokens of
// letters, digits, '-' and '_'.
func validPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("jsstore: empty subject prefix")
	}
	for _, tok := range strings.Split(prefix, ".") {
		if tok == "" {
			return fmt.Errorf("jsstore: subject prefix %q has an empty token", prefix)
		}
		for _, c := range tok {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("jsstore: subject prefix %q: character %q is not allowed", prefix, c)
			}
		}
	}
	return nil
}
