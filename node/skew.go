package node

import "github.com/skyring/skyring"

// Clock skew between nodes.
//
// A timeout is turned into a due time (Created + timeout) by the node that
// accepted the request, by its clock; when another node owns the timer, the
// create or update is relayed there, and the owner fires it by its own
// clock. Were the owner's clock ahead of the accepting node's, the timer
// would fire early by the accepting node's clock. So a timer given with a
// timeout (skyring.Timer.Relative, carried by the relay) is counted again on
// the owner, from when it stores it: the time a relay takes only makes it
// later, never earlier, whatever the skew. A timer given with at is absolute
// and stays as it is; so do hand-offs, which carry timers the owner has
// already stored: a handed-off timer fires by its new owner's clock.

// startCount fixes a relative timer's due time by this node's clock: it
// keeps the timeout d = Due - Created and counts it from now (Created =
// now, Due = now + d), then marks t absolute. d does not change, so the
// bound checked when the timer was parsed (MaxTimeout) still holds. An
// absolute timer (given with at, handed off, or built by an embedder
// without Relative) is left alone. Called just before t is stored, once
// its id is reserved or claimed: t is changed in place, and a caller whose
// store then fails does not send t anywhere else (the node fail-stops).
func (n *Node) startCount(t *skyring.Timer) {
	if !t.Relative {
		return
	}
	d := t.Due - t.Created
	t.Created = n.clock.Now().UnixNano()
	t.Due = t.Created + d
	t.Relative = false
}
