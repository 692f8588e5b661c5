package wire_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func appendAll() []byte {
	b := []byte{0xAA}
	b = wire.AppendUvarint(b, 0)
	b = wire.AppendUvarint(b, math.MaxUint64)
	b = wire.AppendVarint(b, math.MinInt64)
	b = wire.AppendVarint(b, -1)
	b = wire.AppendString(b, "")
	b = wire.AppendString(b, "héllo")
	b = wire.AppendBytes(b, []byte{0, 1, 2})
	b, at := wire.BeginLen32(b)
	b = append(b, "record"...)
	wire.EndLen32(b, at)
	return b
}

func readAll[T ~string | ~[]byte](t *testing.T, r *wire.Reader[T]) {
	t.Helper()
	require.Equal(t, byte(0xAA), r.Byte())
	require.Equal(t, uint64(0), r.Uvarint())
	require.Equal(t, uint64(math.MaxUint64), r.Uvarint())
	require.Equal(t, int64(math.MinInt64), r.Varint())
	require.Equal(t, int64(-1), r.Varint())
	require.Empty(t, r.Field())
	require.Equal(t, "héllo", string(r.Field()))
	require.Equal(t, string([]byte{0, 1, 2}), string(r.Field()))
	n := r.Uint32()
	require.Equal(t, "record", string(r.Next(uint64(n))))
	require.NoError(t, r.Err())
	require.Zero(t, r.Len())
	require.NoError(t, r.Done())
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := appendAll()
	rb := wire.NewReader(b)
	readAll(t, &rb)
	rs := wire.NewReader(string(b))
	readAll(t, &rs)
}

// TestSameBytesAsBinary: the writers are encoding/binary's formats, so
// records written before this package existed read the same.
func TestSameBytesAsBinary(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 127, 128, 300, math.MaxUint32, math.MaxUint64} {
		require.Equal(t, binary.AppendUvarint(nil, v), wire.AppendUvarint(nil, v))
		require.Equal(t, binary.AppendVarint(nil, int64(v)), wire.AppendVarint(nil, int64(v)))
	}
	require.Equal(t, []byte{3, 'a', 'b', 'c'}, wire.AppendString(nil, "abc"))
	b, at := wire.BeginLen32([]byte("x"))
	b = append(b, "abc"...)
	wire.EndLen32(b, at)
	require.Equal(t, []byte{'x', 0, 0, 0, 3, 'a', 'b', 'c'}, b)
}

func TestTruncated(t *testing.T) {
	t.Parallel()
	full := appendAll()
	for n := range len(full) {
		r := wire.NewReader(full[:n])
		r.Byte()
		r.Uvarint()
		r.Uvarint()
		r.Varint()
		r.Varint()
		r.Field()
		r.Field()
		r.Field()
		r.Next(uint64(r.Uint32()))
		require.ErrorIs(t, r.Err(), wire.ErrTruncated, "cut at %d", n)
		require.ErrorIs(t, r.Done(), wire.ErrTruncated, "cut at %d", n)
		// Every read after the error is a zero value.
		require.Zero(t, r.Byte())
		require.Zero(t, r.Uvarint())
		require.Empty(t, r.Field())
	}

	r := wire.NewReader([]byte{5, 'a', 'b'})
	require.Empty(t, r.Field(), "a length past the end")
	require.ErrorIs(t, r.Err(), wire.ErrTruncated)

	r = wire.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	require.Zero(t, r.Uvarint(), "65 bits")
	require.ErrorIs(t, r.Err(), wire.ErrTruncated)

	r = wire.NewReader([]byte{1, 'a', 'z'})
	require.Equal(t, "a", string(r.Field()))
	require.NoError(t, r.Err())
	require.ErrorIs(t, r.Done(), wire.ErrTrailing)
}

// FuzzUvarint: Reader.Uvarint accepts and rejects exactly what
// binary.Uvarint does, so decoding did not change when the hand-rolled
// readers moved here.
func FuzzUvarint(f *testing.F) {
	f.Add([]byte{0x80, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	f.Add([]byte{0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		want, k := binary.Uvarint(b)
		r := wire.NewReader(b)
		got := r.Uvarint()
		if k <= 0 {
			require.ErrorIs(t, r.Err(), wire.ErrTruncated)
			return
		}
		require.NoError(t, r.Err())
		require.Equal(t, want, got)
		require.Equal(t, len(b)-k, r.Len())
	})
}
