package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/skyring/skyring"
)

// ErrStorageFailed is what Node.Err wraps after the node stopped itself on a
// storage write that failed.
var ErrStorageFailed = errors.New("node: storage write failed")

// failStop stops the node on the first failed storage write. A store whose
// write (or fsync) failed may have lost it, or may lose the next ones:
// acknowledging anything more would break "a 201 means stored", so the node
// refuses every command from then on, and the process is expected to exit
// (see Node.Done) and be restarted on a storage that works.
type failStop struct {
	once sync.Once
	err  error
	done chan struct{}
}

func newFailStop() *failStop { return &failStop{done: make(chan struct{})} }

// Done is closed once the node stopped itself on a storage failure; Err then
// says why. A node closed by Close does not close it.
func (n *Node) Done() <-chan struct{} { return n.failed.done }

// Err returns the storage failure that stopped the node (wrapping
// ErrStorageFailed), or nil.
func (n *Node) Err() error {
	select {
	case <-n.failed.done:
		return n.failed.err
	default:
		return nil
	}
}

// storageFault takes the error of a storage write. A store closed by Close
// or a cancelled context is no fault; anything else stops the node: it stops
// admitting commands at once and Done is closed. It returns err, for the
// caller to answer with.
func (n *Node) storageFault(op string, err error) error {
	if err == nil || errors.Is(err, skyring.ErrClosed) || errors.Is(err, context.Canceled) {
		return err
	}
	if n.sharedMode() {
		n.log.Warn("shared store write failed", "op", op, "err", err)
		return sharedFault(op, err)
	}
	n.failed.once.Do(func() {
		n.failed.err = fmt.Errorf("%w: %s: %w", ErrStorageFailed, op, err)
		n.gate.state.CompareAndSwap(stateRunning, stateClosing)
		n.gate.state.CompareAndSwap(stateStarting, stateClosing)
		n.log.Error("storage write failed: the node stops taking commands (fail-stop); restart it on working storage", "op", op, "err", err)
		close(n.failed.done)
	})
	return err
}
