package node

import (
	"context"
	"fmt"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// metaNodeID is the storage meta key of the node's stable identity.
const metaNodeID = "node-id"

// openStorage opens the configured store (or takes Options.Store).
func (n *Node) openStorage(ctx context.Context) error {
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
	stored, err := n.store.Meta(ctx, metaNodeID)
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
		if err := n.store.SetMeta(ctx, metaNodeID, []byte(n.id)); err != nil {
			return fmt.Errorf("node: storing the node id: %w", err)
		}
	}
	return nil
}
