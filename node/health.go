package node

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Reasons /readyz gives for a 503.
var (
	errNotStarted   = errors.New("the node is not running")
	errShuttingDown = errors.New("the node is shutting down")
	errNoBusConn    = errors.New("not connected to NATS")
	errNotMember    = errors.New("not a member of the ring")
)

// Ready reports whether the node serves: it runs (started, not shutting
// down), its storage works, the bus is connected and the node is a member
// of its own ring. It is what GET /readyz answers; the error says why not.
// Close makes it fail at once, before the HTTP edge stops taking requests.
func (n *Node) Ready() error {
	if n.draining.Load() {
		return errShuttingDown
	}
	if err := n.Err(); err != nil {
		return err
	}
	switch n.gate.state.Load() {
	case stateRunning:
	case stateNew, stateStarting:
		return errNotStarted
	default:
		return errShuttingDown
	}
	if nc := n.bus.Conn(); nc == nil || !nc.IsConnected() {
		return errNoBusConn
	}
	if _, ok := n.members.view.Get(n.id); !ok && !n.members.view.Ring().Has(n.id) {
		return errNotMember
	}
	return nil
}

// probeRoutes are the GET routes of the probes, open without a token
// (http.Options.Open): /healthz answers 200 while the process serves HTTP,
// /readyz 200 when Ready, else 503 with the reason.
func (n *Node) probeRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"/healthz": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}),
		"/readyz": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := n.Ready(); err != nil {
				w.Header().Set("X-Skyring-Reason", err.Error())
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "message": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}),
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
