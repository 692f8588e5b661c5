package node

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/storage"
)

// The commands counted by skyring_timer_commands_total (label op).
type cmdOp int

const (
	opCreate cmdOp = iota
	opUpdate
	opCancel
	opRetry
	nOps
)

var opNames = [nOps]string{"create", "update", "cancel", "retry"}

// Where a command entered this node (label interface): the public HTTP
// API, the public NATS API, or a relay from another node to this owner.
type iface int

const (
	ifHTTP iface = iota
	ifNATS
	ifRelay
	nIfaces
)

var ifaceNames = [nIfaces]string{"http", "nats", "relay"}

// Outcomes of a command (label outcome).
const (
	outOK = iota
	outClientError
	outServerError
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"ok", "client_error", "server_error"}

// Outcomes of one delivery attempt (skyring_deliveries_total).
const (
	deliverySuccess    = "success"
	deliveryRetry      = "retry"
	deliveryFailed     = "failed"
	deliverySuperseded = "superseded"
)

// latencyBuckets are the buckets of the lateness histograms: 1ms to 60s,
// roughly ×2.5 apart.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// metrics is the node's Prometheus instrumentation, on a registry of its
// own (never the global default one), served at GET /metrics. The other
// duties call its methods; a nil *metrics (Options.NoMetrics) records
// nothing, so they need no checks of their own.
//
// The hot path (a create) costs one atomic add: its counters are resolved
// once, here, for every label combination.
type metrics struct {
	reg *prometheus.Registry

	commands [nOps][nIfaces][nOutcomes]prometheus.Counter

	deliveries       *prometheus.CounterVec // transport, outcome
	attempts         *prometheus.CounterVec // transport
	retries          *prometheus.CounterVec // transport
	perTransport     sync.Map               // transport name -> *transportCounters
	fireLateness     prometheus.Histogram
	deliveryLateness prometheus.Histogram

	relays        *prometheus.CounterVec   // op, outcome
	relayDuration *prometheus.HistogramVec // op
	relayOps      map[bus.Op]*relayCounters

	handoffSent, handoffReceived prometheus.Counter
	handoffDuration              prometheus.Histogram

	storageWrite prometheus.Histogram
}

// transportCounters are the delivery counters of one transport, resolved
// once.
type transportCounters struct {
	attempts, retries prometheus.Counter
	outcomes          map[string]prometheus.Counter
}

// relayCounters are the relay metrics of one op, resolved once.
type relayCounters struct {
	outcomes map[string]prometheus.Counter
	duration prometheus.Observer
}

// relayOutcomes are the outcomes of a relay sent (skyring_relays_total).
var relayOutcomes = []string{"ok", "client_error", "server_error", "failed"}

// newMetrics registers the node's metric families. The gauges read n when
// scraped: nothing is updated on the hot path for them.
func newMetrics(n *Node) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{reg: reg}
	commands := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyring_timer_commands_total",
		Help: "Timer commands by operation, the interface they entered by (http, nats; relay: relayed to this owner by another node) and outcome.",
	}, []string{"op", "interface", "outcome"})
	for o := range nOps {
		for i := range nIfaces {
			for r := range nOutcomes {
				m.commands[o][i][r] = commands.WithLabelValues(opNames[o], ifaceNames[i], outcomeNames[r])
			}
		}
	}
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyring_deliveries_total",
		Help: "Delivery attempts by transport and outcome (success, retry, failed: the last attempt failed, superseded: the timer was created again meanwhile).",
	}, []string{"transport", "outcome"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyring_delivery_attempts_total",
		Help: "Delivery attempts started, by transport.",
	}, []string{"transport"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyring_delivery_retries_total",
		Help: "Failed delivery attempts that were scheduled again, by transport.",
	}, []string{"transport"})
	m.fireLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "skyring_fire_lateness_seconds",
		Help:    "From a timer's due time (or its retry's) to the start of its delivery attempt.",
		Buckets: latencyBuckets,
	})
	m.deliveryLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "skyring_delivery_lateness_seconds",
		Help:    "From a timer's due time (or its retry's) to the outcome of its delivery attempt.",
		Buckets: latencyBuckets,
	})
	m.relays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyring_relays_total",
		Help: "Commands this node relayed to another node, by operation and outcome (ok, client_error, server_error: the owner's answer; failed: no answer).",
	}, []string{"op", "outcome"})
	m.relayDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "skyring_relay_duration_seconds",
		Help:    "Round trip of the relays this node sent, by operation.",
		Buckets: latencyBuckets,
	}, []string{"op"})
	m.relayOps = map[bus.Op]*relayCounters{}
	for _, op := range []bus.Op{bus.OpCreate, bus.OpUpdate, bus.OpCancel, bus.OpGet, bus.OpRetry} {
		m.relayOps[op] = m.relayCounters(op)
	}
	handoffs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyring_handoff_timers_total",
		Help: "Timers handed off to their owner (sent, acknowledged) or taken from another node (received).",
	}, []string{"direction"})
	m.handoffSent = handoffs.WithLabelValues("sent")
	m.handoffReceived = handoffs.WithLabelValues("received")
	m.handoffDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "skyring_handoff_duration_seconds",
		Help:    "Round trip of one hand-off message this node sent.",
		Buckets: latencyBuckets,
	})
	m.storageWrite = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "skyring_storage_write_seconds",
		Help:    "One storage write batch (put or delete), fsync included.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	reg.MustRegister(
		commands, m.deliveries, m.attempts, m.retries, m.fireLateness, m.deliveryLateness,
		m.relays, m.relayDuration, handoffs, m.handoffDuration, m.storageWrite,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "skyring_timers_pending",
			Help: "Timers this node holds pending (armed or being created).",
		}, func() float64 { return float64(n.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "skyring_timers_failed",
			Help: "Dead letters (finally failed timers) this node holds.",
		}, func() float64 { return float64(n.nfailed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "skyring_ring_members",
			Help: "Members of the ring as this node sees it.",
		}, func() float64 { return float64(n.ringMembers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "skyring_ring_version",
			Help: "Version of this node's view of the ring (it grows with every change).",
		}, func() float64 { return float64(n.ringVersion()) }),
		dueCollector{n},
	)
	return m
}

// handler serves the exposition (GET /metrics); nil when metrics are off.
func (m *metrics) handler() http.Handler {
	if m == nil {
		return nil
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// command counts one command that entered by ifc, with its outcome.
func (m *metrics) command(op cmdOp, ifc iface, err error) {
	if m == nil {
		return
	}
	m.commands[op][ifc][commandOutcome(err)].Inc()
}

// commandOutcome classes err as a client or server error by its status.
func commandOutcome(err error) int {
	if err == nil {
		return outOK
	}
	if status, _ := skyring.Status(err); status < 500 {
		return outClientError
	}
	return outServerError
}

func (m *metrics) transport(name string) *transportCounters {
	if c, ok := m.perTransport.Load(name); ok {
		return c.(*transportCounters)
	}
	c := &transportCounters{
		attempts: m.attempts.WithLabelValues(name),
		retries:  m.retries.WithLabelValues(name),
		outcomes: map[string]prometheus.Counter{},
	}
	for _, o := range []string{deliverySuccess, deliveryRetry, deliveryFailed, deliverySuperseded} {
		c.outcomes[o] = m.deliveries.WithLabelValues(name, o)
	}
	got, _ := m.perTransport.LoadOrStore(name, c)
	return got.(*transportCounters)
}

// attemptStarted counts a delivery attempt of a timer due at due (unix ns)
// starting at now.
func (m *metrics) attemptStarted(transport string, due, now int64) {
	if m == nil {
		return
	}
	m.transport(transport).attempts.Inc()
	m.fireLateness.Observe(lateness(due, now))
}

// attemptEnded counts the outcome of a delivery attempt of a timer due at
// due, known at now.
func (m *metrics) attemptEnded(transport, outcome string, due, now int64) {
	if m == nil {
		return
	}
	c := m.transport(transport)
	c.outcomes[outcome].Inc()
	if outcome == deliveryRetry {
		c.retries.Inc()
	}
	m.deliveryLateness.Observe(lateness(due, now))
}

func lateness(due, now int64) float64 {
	return max(0, time.Duration(now-due).Seconds())
}

// relayed counts a relay this node sent: err is the relay's own failure
// (no answer), rerr the owner's answer.
func (m *metrics) relayed(op bus.Op, took time.Duration, err, rerr error) {
	if m == nil {
		return
	}
	out := "failed"
	if err == nil {
		out = outcomeNames[commandOutcome(rerr)]
	}
	c, ok := m.relayOps[op]
	if !ok {
		c = m.relayCounters(op) // not one of the commands: rare
	}
	c.outcomes[out].Inc()
	c.duration.Observe(took.Seconds())
}

func (m *metrics) relayCounters(op bus.Op) *relayCounters {
	name := op.String()
	c := &relayCounters{outcomes: map[string]prometheus.Counter{}, duration: m.relayDuration.WithLabelValues(name)}
	for _, o := range relayOutcomes {
		c.outcomes[o] = m.relays.WithLabelValues(name, o)
	}
	return c
}

// knownTransports resolves the delivery counters of the enabled
// transports, so that their series show (at 0) before any delivery.
func (m *metrics) knownTransports(names []string) {
	if m == nil {
		return
	}
	for _, name := range names {
		m.transport(name)
	}
}

// handedOff counts a hand-off message this node sent and the timers of it
// the owner acknowledged.
func (m *metrics) handedOff(took time.Duration, acked int) {
	if m == nil {
		return
	}
	m.handoffDuration.Observe(took.Seconds())
	m.handoffSent.Add(float64(acked))
}

// tookHandoff counts timers another node handed to this one.
func (m *metrics) tookHandoff(stored int) {
	if m == nil {
		return
	}
	m.handoffReceived.Add(float64(stored))
}

// timeStore wraps a store to time its writes.
func (m *metrics) timeStore(s storage.Store) storage.Store {
	if m == nil {
		return s
	}
	return timedStore{Store: s, hist: m.storageWrite}
}

// timedStore times the writes of a store (skyring_storage_write_seconds).
type timedStore struct {
	storage.Store
	hist prometheus.Histogram
}

func (s timedStore) Put(ctx context.Context, timers ...*skyring.Timer) error {
	if len(timers) == 0 {
		return s.Store.Put(ctx)
	}
	start := time.Now()
	err := s.Store.Put(ctx, timers...)
	s.hist.Observe(time.Since(start).Seconds())
	return err
}

func (s timedStore) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return s.Store.Delete(ctx)
	}
	start := time.Now()
	err := s.Store.Delete(ctx, ids...)
	s.hist.Observe(time.Since(start).Seconds())
	return err
}

// dueWindows are the windows of skyring_timers_pending_due, by how soon a
// pending timer is due.
var dueWindows = []struct {
	label string
	d     time.Duration
}{
	{"1m", time.Minute}, {"10m", 10 * time.Minute}, {"1h", time.Hour}, {"1d", 24 * time.Hour},
}

var pendingDueDesc = prometheus.NewDesc("skyring_timers_pending_due",
	"This node's pending timers by how soon they are due: within 1m, 10m, 1h, 1d, or later (each window excludes the smaller ones).",
	[]string{"within"}, nil)

// dueCollector counts the armed timers by due window when scraped. Up to
// dueSample timers it counts every one; beyond, it counts a sample of
// dueSample under the index's lock and scales it (an estimate, to within a
// few percent of a window's share), so that a scrape, or the dashboard
// polling once a second, never holds creates back for long: a full pass
// over 1,000,000 timers holds the lock ~60 ms, the sample well under 1 ms.
type dueCollector struct{ n *Node }

// dueSample is how many index entries a scrape of the due windows reads.
const dueSample = 20_000

func (c dueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDueDesc }

func (c dueCollector) Collect(ch chan<- prometheus.Metric) {
	counts := make([]float64, len(dueWindows)+1)
	scale := 1.0
	if c.n.index != nil {
		now := c.n.clock.Now().UnixNano()
		scale = c.n.index.sampleDue(dueSample, func(due int64) {
			i := 0
			for i < len(dueWindows) && due-now > int64(dueWindows[i].d) {
				i++
			}
			counts[i]++
		})
	}
	for i, w := range dueWindows {
		ch <- prometheus.MustNewConstMetric(pendingDueDesc, prometheus.GaugeValue, math.Round(counts[i]*scale), w.label)
	}
	ch <- prometheus.MustNewConstMetric(pendingDueDesc, prometheus.GaugeValue, math.Round(counts[len(dueWindows)]*scale), "later")
}

// nfailed is how many dead letters the node holds.
func (n *Node) nfailed() int {
	if n.index == nil {
		return 0
	}
	return n.index.nfailed()
}

// ringMembers is how many members this node's ring has.
func (n *Node) ringMembers() int {
	if n.members == nil {
		return 0
	}
	return len(n.members.view.Members())
}

// ringVersion is the version of this node's ring.
func (n *Node) ringVersion() uint64 {
	if n.members == nil {
		return 0
	}
	return n.members.view.Version()
}
