package transports

import "errors"

// ErrPermanent marks a delivery failure that retrying cannot fix: the
// callback itself is wrong (a method the transport does not know, an address
// it cannot parse). The node may branch on it with errors.Is to fail the timer
// without retrying. Build such errors with Permanent.
var ErrPermanent = errors.New("transports: permanent failure")

// Permanent marks err as permanent: errors.Is(Permanent(err), ErrPermanent)
// holds, and err stays reachable through errors.Is/As. The message is err's.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }
