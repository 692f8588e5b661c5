package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Percentiles summarises samples, in milliseconds (nearest rank on the
// sorted samples, so exact).
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// percentilesMs sorts ns (in place) and returns its percentiles in ms.
func percentilesMs(ns []int64) Percentiles {
	if len(ns) == 0 {
		return Percentiles{}
	}
	slices.Sort(ns)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ns)))) - 1
		i = max(0, min(i, len(ns)-1))
		return roundMs(ns[i])
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: roundMs(ns[len(ns)-1])}
}

// roundMs converts ns to ms with microsecond precision.
func roundMs(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

func round3(f float64) float64 { return math.Round(f*1e3) / 1e3 }

// Result is the report of one run. Its JSON form is the last line the CLI
// prints.
type Result struct {
	Mode Mode `json:"mode"`
	// Transport is how creates were sent: "http", "nats-request",
	// "nats-publish", or "floor" (no creates: the tool delivered itself).
	Transport   string   `json:"transport"`
	Targets     []string `json:"targets"`
	Concurrency int      `json:"concurrency"`
	// Creates is the number of timers created (201; publishes in NATS
	// publish mode; requests held in memory in floor mode).
	Creates      int64 `json:"creates"`
	CreateErrors int64 `json:"create_errors"`
	// CreatePerSec is Creates over the create phase (0 in floor mode).
	CreatePerSec float64 `json:"create_per_sec"`
	// Latency of the successful creates (empty in NATS publish and floor
	// modes).
	Latency Percentiles `json:"latency_ms"`

	// Delivery figures: instant and rate modes only.
	Delivered  int64 `json:"delivered"`  // distinct timers of the run that arrived
	Missing    int64 `json:"missing"`    // created but never arrived
	Duplicates int64 `json:"duplicates"` // arrivals after a timer's first
	Early      int64 `json:"early"`      // arrivals before their due instant (must be 0)
	Unexpected int64 `json:"unexpected"` // arrivals naming no timer of this run
	BadData    int64 `json:"bad_data"`   // arrivals whose body is not the data sent
	// Lateness of each timer's first arrival (arrival minus due).
	Lateness Percentiles `json:"lateness_ms"`
	// DeliveryPerSec is Delivered over the span from the first due instant
	// to the last arrival.
	DeliveryPerSec float64 `json:"delivery_per_sec"`
	// DeliveryErrors counts failed floor deliveries.
	DeliveryErrors int64 `json:"delivery_errors,omitempty"`

	// Baseline: the same create load against a trivial handler.
	BaselinePerSec *float64 `json:"baseline_per_sec,omitempty"`
	Ratio          *float64 `json:"ratio,omitempty"` // CreatePerSec / BaselinePerSec

	// CleanedUp is how many still pending timers Config.Cleanup cancelled;
	// nil without it.
	CleanedUp *int64 `json:"cleaned_up,omitempty"`

	ErrorSamples []string      `json:"error_samples,omitempty"` // first distinct create error reasons
	Warnings     []string      `json:"warnings,omitempty"`
	Elapsed      time.Duration `json:"-"`
	CreatePhase  time.Duration `json:"-"`
}

// WriteJSON writes r as one JSON line.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes a human summary of r.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s over %s, targets %s, concurrency %d, %s\n",
		r.Mode, r.Transport, strings.Join(r.Targets, " "), r.Concurrency, r.Elapsed.Round(time.Millisecond))
	if r.Transport == "floor" {
		fmt.Fprintf(&b, "floor:      %d callbacks held in memory and sent by the tool itself\n", r.Creates)
	} else {
		fmt.Fprintf(&b, "creates:    %d ok, %d errors in %s: %.1f/s\n",
			r.Creates, r.CreateErrors, r.CreatePhase.Round(time.Millisecond), r.CreatePerSec)
		if r.Latency != (Percentiles{}) {
			fmt.Fprintf(&b, "latency:    %s\n", r.Latency)
		}
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(&b, "  error:    %s\n", e)
	}
	if r.Mode.awaited() {
		fmt.Fprintf(&b, "delivered:  %d (missing %d, duplicates %d, early %d, unexpected %d, bad data %d)\n",
			r.Delivered, r.Missing, r.Duplicates, r.Early, r.Unexpected, r.BadData)
		if r.DeliveryErrors > 0 {
			fmt.Fprintf(&b, "  floor delivery errors: %d\n", r.DeliveryErrors)
		}
		fmt.Fprintf(&b, "lateness:   %s\n", r.Lateness)
		fmt.Fprintf(&b, "deliveries: %.1f/s\n", r.DeliveryPerSec)
	}
	if r.BaselinePerSec != nil {
		fmt.Fprintf(&b, "baseline:   %.1f creates/s against a trivial handler", *r.BaselinePerSec)
		if r.Ratio != nil {
			fmt.Fprintf(&b, "; ratio %.3f", *r.Ratio)
		}
		b.WriteByte('\n')
	}
	if r.CleanedUp != nil {
		fmt.Fprintf(&b, "cleaned up %d\n", *r.CleanedUp)
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "warning:    %s\n", wn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p Percentiles) String() string {
	return fmt.Sprintf("p50 %.3fms p90 %.3fms p99 %.3fms max %.3fms", p.P50, p.P90, p.P99, p.Max)
}

// reasons keeps the first few distinct error reasons.
type reasons struct {
	full atomic.Bool
	mu   sync.Mutex
	list []string
}

const maxReasons = 5

func (r *reasons) add(s string) {
	if r.full.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) >= maxReasons || slices.Contains(r.list, s) {
		return
	}
	r.list = append(r.list, s)
	if len(r.list) >= maxReasons {
		r.full.Store(true)
	}
}

func (r *reasons) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}
