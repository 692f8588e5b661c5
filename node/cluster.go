package node

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"

	"github.com/skyring/skyring/ring"
)

// ClusterInfo is what GET /cluster shows: this node, the live members as
// this node sees them, and the version of its ring.
type ClusterInfo struct {
	Node        ring.Member   `json:"node"`
	Members     []ring.Member `json:"members"`
	RingVersion uint64        `json:"ring_version"`
}

// Owner is the ring member that owns the timer id, as this node sees the
// ring now.
func (n *Node) Owner(id string) string { return n.members.owner(id) }

// Cluster returns this node's view of the cluster (after Start).
func (n *Node) Cluster() ClusterInfo {
	self := n.localMember()
	info := ClusterInfo{Node: self, RingVersion: n.members.view.Version()}
	for _, m := range n.members.view.Members() {
		if m.ID == n.id {
			m = self
		}
		info.Members = append(info.Members, m)
	}
	return info
}

// localMember is this node's fresh entry: what its heartbeats say and
// GET /cluster shows.
func (n *Node) localMember() ring.Member {
	m := ring.Member{ID: n.id, Timers: n.Len(), Started: n.started.UnixMilli(), NATS: n.NATSURL()}
	if a := n.HTTPAddr(); a != nil {
		m.HTTPAddr = a.String()
		// Listening on every interface: advertise the cluster host.
		if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
			m.HTTPAddr = net.JoinHostPort(n.opts.ChannelHost, strconv.Itoa(ta.Port))
		}
	}
	return m
}

func (n *Node) extraRoutes() map[string]http.Handler {
	routes := n.probeRoutes()
	routes["/cluster"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(n.Cluster())
	})
	if h := n.metrics.handler(); h != nil {
		routes["/metrics"] = h
	}
	return routes
}
