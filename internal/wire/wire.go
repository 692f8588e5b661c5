// Package wire holds the append and read helpers shared by Skyring's two
// binary encodings: the Timer record that storage keeps and relays carry
// (package skyring, timer.go) and the node-to-node relay messages (package
// bus, relay.go). Both are built from the same few pieces (uvarints,
// zig-zag varints, uvarint-length-prefixed bytes, big-endian uint32 length
// prefixes), so one implementation of each keeps their bounds checks in one
// place.
//
// Writers append to a []byte. A [Reader] walks a string or a []byte and
// records the first error, so a decoder reads every field in a row and
// checks once at the end.
//
// It imports only the standard library, so that the root package can use it
// and remain the leaf every other package imports. It must not know any
// record's layout: that stays with the record's owner.
package wire

import (
	"encoding/binary"
	"errors"
)

// ErrTruncated is the Reader's error when the input ends inside a field, a
// length runs past the end, or a varint overflows 64 bits.
var ErrTruncated = errors.New("wire: truncated or malformed input")

// ErrTrailing is returned by Reader.Done when bytes remain after the last
// field: the input is not what the writer wrote (two records run together,
// a torn or overwritten value).
var ErrTrailing = errors.New("wire: trailing bytes")

// Longest encodings, for sizing a buffer before appending.
const (
	// MaxVarintLen is the longest (u)varint: a 64-bit value.
	MaxVarintLen = binary.MaxVarintLen64
	// MaxLenPrefix is the longest uvarint length of a field under 4 GiB.
	MaxLenPrefix = binary.MaxVarintLen32
)

// AppendUvarint appends v as a uvarint (encoding/binary's format).
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendVarint appends v as a zig-zag varint (encoding/binary's format).
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendString appends the uvarint length of s, then s.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBytes appends the uvarint length of p, then p.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// BeginLen32 appends room for a big-endian uint32 length and returns where
// it is; append the record, then call EndLen32. It lets a record whose size
// is known only once written carry a fixed-size length in front of it.
func BeginLen32(b []byte) ([]byte, int) { return append(b, 0, 0, 0, 0), len(b) }

// EndLen32 writes, at the offset BeginLen32 returned, the number of bytes
// appended after the length.
func EndLen32(b []byte, at int) {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
}

// Reader reads the pieces the Append functions write, from a string or a
// []byte. The values it returns alias its input: read from a string to get
// strings that share the input's one allocation, from a []byte to get
// sub-slices without copying. After the first error every read returns a
// zero value and Err reports the error.
type Reader[T ~string | ~[]byte] struct {
	buf T
	err error
}

// NewReader returns a Reader over b.
func NewReader[T ~string | ~[]byte](b T) Reader[T] { return Reader[T]{buf: b} }

// Err returns the first error met, or nil.
func (r *Reader[T]) Err() error { return r.err }

// Len returns the number of bytes not read yet.
func (r *Reader[T]) Len() int { return len(r.buf) }

// Done returns the first error met, or ErrTrailing if input remains.
func (r *Reader[T]) Done() error {
	if r.err == nil && len(r.buf) != 0 {
		return ErrTrailing
	}
	return r.err
}

func (r *Reader[T]) fail() {
	if r.err == nil {
		r.err = ErrTruncated
	}
	r.buf = r.buf[:0]
}

// Uvarint reads a uvarint. It accepts exactly what binary.Uvarint accepts.
func (r *Reader[T]) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	var shift uint
	for i := 0; i < len(r.buf) && i < binary.MaxVarintLen64; i++ {
		c := r.buf[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			r.buf = r.buf[i+1:]
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.fail()
	return 0
}

// Varint reads a zig-zag varint.
func (r *Reader[T]) Varint() int64 {
	u := r.Uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// Byte reads one byte.
func (r *Reader[T]) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.buf) == 0 {
		r.fail()
		return 0
	}
	c := r.buf[0]
	r.buf = r.buf[1:]
	return c
}

// Uint32 reads a big-endian uint32.
func (r *Reader[T]) Uint32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.buf) < 4 {
		r.fail()
		return 0
	}
	v := uint32(r.buf[0])<<24 | uint32(r.buf[1])<<16 | uint32(r.buf[2])<<8 | uint32(r.buf[3])
	r.buf = r.buf[4:]
	return v
}

// Next reads the next n bytes.
func (r *Reader[T]) Next(n uint64) T {
	if r.err != nil {
		return r.buf[:0]
	}
	if n > uint64(len(r.buf)) {
		r.fail()
		return r.buf[:0]
	}
	v := r.buf[:n]
	r.buf = r.buf[n:]
	return v
}

// Field reads what AppendString or AppendBytes wrote: a uvarint length,
// then that many bytes.
func (r *Reader[T]) Field() T { return r.Next(r.Uvarint()) }
