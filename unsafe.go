package skyring

import "unsafe"

// unsafeString views b as a string without copying. b must never be written
// again; UnmarshalBinary guarantees that by decoding from its own copy.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
