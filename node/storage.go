package node

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// Storage meta keys: the node's stable identity, and how many times it
// started on this storage (its incarnation, part of every delivery's fence).
const (
	metaNodeID      = "node-id"
	metaIncarnation = "incarnation"
)

// fenceLowBits is how many low bits of a fence hold the delivering node's
// incarnation; the bits above hold the timer's owner changes (Moves).
const fenceLowBits = 20

// fence is the fencing token of a delivery of t by this node: it grows
// with every owner change of t (Moves, high bits) and, for one owner,
// with every restart of the node (its incarnation, low bits, saturating at
// 2^20-1 restarts).
func (n *Node) fence(t *skyring.Timer) uint64 {
	return uint64(t.Moves)<<fenceLowBits | min(n.incarnation, 1<<fenceLowBits-1)
}

// bumpIncarnation counts this start in storage: a delivery repeated after
// a crash carries a higher fence than the one under way at the crash.
func (n *Node) bumpIncarnation(ctx context.Context) error {
	v, err := n.meta.Meta(ctx, metaIncarnation)
	if err != nil {
		return fmt.Errorf("node: reading the incarnation: %w", err)
	}
	var inc uint64
	if len(v) == 8 {
		inc = binary.BigEndian.Uint64(v)
	}
	inc++
	if err := n.meta.SetMeta(ctx, metaIncarnation, binary.BigEndian.AppendUint64(nil, inc)); err != nil {
		return fmt.Errorf("node: storing the incarnation: %w", n.storageFault("incarnation", err))
	}
	n.incarnation = inc
	return nil
}

// openStorage opens the configured store (or takes Options.Store), wrapped
// by Options.Faults.WrapStore when that is set.
func (n *Node) openStorage(ctx context.Context) error {
	if err := n.openStore(ctx); err != nil {
		return err
	}
	if wrap := n.opts.Faults.WrapStore; wrap != nil {
		n.store = wrap(n.store)
	}
	n.store = n.metrics.timeStore(n.store)
	n.meta = n.store
	return nil
}

func (n *Node) openStore(ctx context.Context) error {
	if n.opts.Store != nil {
		n.store = n.opts.Store
		n.storePath = n.opts.StoragePath
		return nil
	}
	reg := n.opts.StorageRegistry
	if reg == nil {
		reg = defaultStorage()
	}
	s, err := reg.Open(n.opts.StorageBackend, storage.Options{
		Path:   n.opts.StoragePath,
		NoSync: n.opts.StorageNoSync,
		Extra:  n.opts.StorageExtra,
		Logger: n.log.With("component", "storage"),
		// A record that cannot be decoded is moved aside during recovery;
		// the count is logged once recovery is done.
		OnCorrupt: func(string, error) { n.corrupt.Add(1) },
	})
	if err != nil {
		return fmt.Errorf("node: opening storage: %w", err)
	}
	n.store = s
	if !isMemoryBackend(n.opts.StorageBackend) {
		n.storePath = n.opts.StoragePath
	}
	return nil
}

func (n *Node) loadIdentity(ctx context.Context) error {
	stored, err := n.meta.Meta(ctx, metaNodeID)
	if err != nil {
		return fmt.Errorf("node: reading the node id: %w", err)
	}
	switch {
	case n.opts.ID != "":
		n.id = n.opts.ID
	case len(stored) > 0:
		n.id = string(stored)
	default:
		n.id = skyring.NewID()
	}
	if err := validNodeID(n.id); err != nil {
		return err
	}
	if string(stored) != n.id {
		if err := n.meta.SetMeta(ctx, metaNodeID, []byte(n.id)); err != nil {
			return fmt.Errorf("node: storing the node id: %w", err)
		}
	}
	return nil
}
