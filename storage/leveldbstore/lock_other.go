//go:build !unix && !windows

package leveldbstore

// isLockHeld cannot tell a held lock from other open errors on this
// platform.
func isLockHeld(error) bool { return false }
