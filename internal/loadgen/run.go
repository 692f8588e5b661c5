package loadgen

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// dueMargin: a create is not sent once its due instant is this close (the
// server would refuse an `at` in the past).
const dueMargin = time.Millisecond

// awaitingMsg starts the progress line printed once the creates are over
// (floor: once the requests are held) and the wait for deliveries begins.
const awaitingMsg = "awaiting the deliveries of"

// leadHint ends every warning that says the creates did not keep ahead of
// their due instants: the lead was too short for the machine.
const leadHint = "raise --lead"

// Run performs one bench run and returns its report. Progress lines (one a
// second) and warnings go to progress (nil: discarded). When ctx ends early,
// Run stops every loop and returns the partial report with an error.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	// The progress printer, the create phase and the run all write to it.
	progress = &lockedWriter{w: progress}
	var baseline *Result
	if cfg.Baseline {
		var err error
		baseline, err = runBaseline(ctx, cfg, progress)
		if err != nil {
			return nil, err
		}
	}
	res, err := newEngine(cfg, "", progress).run(ctx)
	if res != nil && baseline != nil {
		bps := baseline.CreatePerSec
		res.BaselinePerSec = &bps
		if bps > 0 {
			ratio := round3(res.CreatePerSec / bps)
			res.Ratio = &ratio
		}
		if baseline.CreateErrors > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("baseline had %d create errors: %v",
				baseline.CreateErrors, baseline.ErrorSamples))
		}
		if cfg.NATSURL != "" {
			res.Warnings = append(res.Warnings, "the baseline ran over HTTP, the bench over NATS")
		}
	}
	return res, err
}

// runBaseline runs the same create load, unpaced and over HTTP, against the
// trivial target.
func runBaseline(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	url := cfg.BaselineURL
	if url == "" {
		p, err := startTrivial(ctx, cfg.BaselineCommand, cfg.RequestTimeout)
		if err != nil {
			return nil, err
		}
		defer func() { _ = p.Stop() }()
		url = p.URL
	}
	b := cfg
	b.Targets = []string{url}
	b.Mode = ModeCreate
	b.NATSURL = ""
	b.SinkAddr = DefaultSinkAddr
	b.Baseline = false
	if cfg.Mode.awaited() {
		b.Count, b.Duration = cfg.planned(), 0
	}
	fmt.Fprintf(progress, "baseline: %d workers against the trivial target %s\n", b.Concurrency, url)
	res, err := newEngine(b, "baseline ", progress).run(ctx)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	return res, nil
}

// engine is one run: a sink, a create phase (or a floor), a wait phase.
type engine struct {
	cfg      Config
	label    string // progress prefix; "" for the main run
	progress io.Writer
	ids      idScheme
	planned  int // timers planned, 0: unbounded (create mode by time)

	t0       time.Time
	dueOf    func(seq int) int64 // awaited modes
	deadline time.Time           // create phase ends here, zero: no limit

	next         atomic.Int64
	creates      atomic.Int64
	createErrors atomic.Int64
	behind       atomic.Int64 // rate mode creates skipped: already due
	late         atomic.Int64 // awaited modes: failed creates answered after their due instant
	cutByDue     atomic.Bool  // instant mode: the due instant stopped creates
	created      []atomic.Bool
	reasons      reasons

	sink    *sink
	bodies  *bodies
	creator creator
	floor   *floor
}

func newEngine(cfg Config, label string, progress io.Writer) *engine {
	return &engine{cfg: cfg, label: label, progress: progress, ids: newIDScheme(), planned: cfg.planned()}
}

func (e *engine) transport() string {
	switch {
	case e.cfg.Floor:
		return "floor"
	case e.cfg.NATSURL != "" && e.cfg.NATSMode == NATSPublish:
		return "nats-publish"
	case e.cfg.NATSURL != "":
		return "nats-request"
	default:
		return "http"
	}
}

func (e *engine) run(ctx context.Context) (*Result, error) {
	cfg := e.cfg
	awaited := cfg.Mode.awaited()
	if !cfg.Floor {
		var err error
		if e.creator, err = e.newCreator(ctx); err != nil {
			return nil, err
		}
		defer e.creator.close()
	}

	// The schedule counts from t0.
	e.t0 = time.Now()
	t0ns := e.t0.UnixNano()
	capacity := 0
	switch cfg.Mode {
	case ModeInstant:
		due := t0ns + int64(cfg.Lead)
		e.dueOf = func(int) int64 { return due }
	case ModeRate:
		lead, perSec := int64(cfg.Lead), cfg.Rate
		e.dueOf = func(seq int) int64 { return t0ns + lead + int64(float64(seq)*1e9/perSec) }
	}
	if awaited {
		capacity = e.planned
		e.created = make([]atomic.Bool, capacity)
	}
	e.sink = newSink(e.ids, capacity, e.dueOf)
	if err := e.sink.Start(cfg.SinkAddr); err != nil {
		return nil, err
	}
	defer func() { _ = e.sink.Close() }()
	timeout := time.Duration(0) // awaited modes send "at"
	if cfg.Mode == ModeCreate {
		timeout = cfg.Timeout
	}
	e.bodies = newBodies(e.ids, cfg.Data == DataObject, timeout, e.sink.URI()).withPad(cfg.DataPad)
	if cfg.Duration > 0 && cfg.Mode != ModeRate {
		e.deadline = e.t0.Add(cfg.Duration)
	}

	stopProgress := e.startProgress()
	defer stopProgress()

	var (
		latency  []int64
		floorWG  sync.WaitGroup
		floorEnd = make(chan struct{})
	)
	floorCtx, stopFloor := context.WithCancel(ctx)
	defer func() {
		stopFloor()
		floorWG.Wait()
	}()
	if cfg.Floor {
		e.floor = newFloor(cfg, e.sink.URI(), e.ids, e.bodies, e.planned, e.dueOf)
		for seq := range e.planned {
			e.created[seq].Store(true)
		}
		e.creates.Store(int64(e.planned))
		floorWG.Go(func() {
			defer close(floorEnd)
			e.floor.run(floorCtx)
		})
	} else {
		latency = e.createPhase(ctx)
	}
	createEnd := time.Now()

	var timedOut bool
	if awaited && ctx.Err() == nil {
		fmt.Fprintf(e.progress, "%s%s %d timers for at most %s\n", e.label, awaitingMsg, e.creates.Load(), cfg.Wait)
		timedOut = e.await(ctx, createEnd.Add(cfg.Wait), floorEnd)
	}
	stopFloor()
	floorWG.Wait()
	stopProgress()
	if err := e.sink.Close(); err != nil {
		return nil, err
	}

	res := e.result(latency, createEnd, time.Since(e.t0))
	var waitErr error
	if timedOut {
		waitErr = fmt.Errorf("awaiting deliveries: %d of %d arrived before the deadline (--wait %s after the creates): %w",
			res.Creates-res.Missing, res.Creates, cfg.Wait, ErrDeliveriesMissing)
		res.Warnings = append(res.Warnings, waitErr.Error())
	}
	if cfg.Cleanup && e.label == "" && !cfg.Floor {
		n, err := e.cleanup(ctx)
		res.CleanedUp = &n
		if err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		}
		fmt.Fprintf(e.progress, "%scleaned up %d\n", e.label, n)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.progress, "%swarning: %s\n", e.label, w)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench interrupted: %w", context.Cause(ctx))
	}
	return res, waitErr
}

func (e *engine) newCreator(ctx context.Context) (creator, error) {
	if e.cfg.NATSURL != "" {
		return newNATSCreator(e.cfg, e.ids)
	}
	h, err := newHTTPCreator(e.cfg.Targets, e.cfg.Concurrency, e.cfg.RequestTimeout, e.cfg.Token)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	if err := preflight(pctx, h.client, e.cfg.Targets); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// createPhase runs the create workers to the end of the schedule and
// returns the create latencies (ns).
func (e *engine) createPhase(ctx context.Context) []int64 {
	per := make([][]int64, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range per {
		wg.Go(func() { per[w] = e.worker(ctx) })
	}
	wg.Wait()
	if ctx.Err() == nil {
		if err := e.creator.finish(ctx); err != nil {
			e.reasons.add(err.Error())
			fmt.Fprintf(e.progress, "%swarning: %v\n", e.label, err)
		}
	}
	var all []int64
	for _, p := range per {
		all = append(all, p...)
	}
	return all
}

// worker claims timers in sequence and creates them until the plan, the
// deadline or ctx ends.
func (e *engine) worker(ctx context.Context) []int64 {
	var samples []int64
	if e.planned > 0 {
		samples = make([]int64, 0, e.planned/e.cfg.Concurrency+1)
	}
	tm := time.NewTimer(time.Hour)
	tm.Stop()
	defer tm.Stop()
	measure := e.creator.measuresLatency()
	for ctx.Err() == nil {
		seq64 := e.next.Add(1) - 1
		if e.planned > 0 && seq64 >= int64(e.planned) {
			return samples
		}
		seq := int(seq64)
		if !e.deadline.IsZero() && !time.Now().Before(e.deadline) {
			return samples
		}
		var due int64
		switch e.cfg.Mode {
		case ModeCreate:
			due = time.Now().Add(e.cfg.Timeout).UnixNano()
		case ModeInstant:
			due = e.dueOf(seq)
			if time.Now().UnixNano() >= due-int64(dueMargin) {
				e.cutByDue.Store(true)
				return samples
			}
		case ModeRate:
			due = e.dueOf(seq)
			if !sleepUntil(ctx, tm, due-int64(e.cfg.Lead)) {
				return samples
			}
			if time.Now().UnixNano() >= due-int64(dueMargin) {
				e.behind.Add(1)
				e.fail("create fell behind the schedule: timer already due")
				continue
			}
		}
		body := e.bodies.appendCreate(make([]byte, 0, 256), seq, due)
		start := time.Now()
		ok, reason := e.creator.create(ctx, seq, e.ids.id(seq), body)
		took := time.Since(start)
		switch {
		case ok:
			e.creates.Add(1)
			if e.created != nil {
				e.created[seq].Store(true)
			}
			if measure {
				samples = append(samples, int64(took))
			}
		case ctx.Err() != nil:
			return samples // interrupted: not the target's error
		default:
			e.fail(reason)
			if e.cfg.Mode.awaited() && time.Now().UnixNano() >= due {
				// The due instant passed while the create was in flight
				// (the target refuses an "at" in the past): the create
				// was too late, whatever the reason given.
				e.late.Add(1)
			}
		}
	}
	return samples
}

func (e *engine) fail(reason string) {
	e.createErrors.Add(1)
	e.reasons.add(reason)
}

// await waits until every created timer arrived (then Settle more, to see
// duplicates), until deadline, or until ctx ends, whichever comes first. In
// floor mode it waits for the floor to finish sending instead. It reports
// whether it gave up at the deadline.
func (e *engine) await(ctx context.Context, deadline time.Time, floorEnd <-chan struct{}) bool {
	dl := time.NewTimer(time.Until(deadline))
	defer dl.Stop()
	if e.cfg.Floor {
		// Every arrival is recorded before the floor's request returns.
		select {
		case <-floorEnd:
			return false
		case <-dl.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	expected := e.creates.Load()
	for e.sink.distinct.Load() < expected || e.missing() > 0 {
		select {
		case <-tick.C:
		case <-dl.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	settle := time.NewTimer(e.cfg.Settle)
	defer settle.Stop()
	select {
	case <-settle.C:
	case <-ctx.Done():
	}
	return false
}

// missing counts timers created but not arrived.
func (e *engine) missing() int64 {
	var n int64
	for seq := range e.created {
		if e.created[seq].Load() && !e.sink.arrived(seq) {
			n++
		}
	}
	return n
}

// startProgress prints a line a second until the returned func is called
// (idempotent; it returns once the printer has stopped).
func (e *engine) startProgress() func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var prev int64
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				c := e.creates.Load()
				if e.cfg.Floor {
					fmt.Fprintf(e.progress, "%s[%5.1fs] held %d delivered %d\n",
						e.label, now.Sub(e.t0).Seconds(), c, e.sink.distinct.Load())
					continue
				}
				fmt.Fprintf(e.progress, "%s[%5.1fs] creates %d (%d/s) errors %d delivered %d\n",
					e.label, now.Sub(e.t0).Seconds(), c, c-prev, e.createErrors.Load(), e.sink.distinct.Load())
				prev = c
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stop) })
		<-done
	}
}

func (e *engine) result(latency []int64, createEnd time.Time, elapsed time.Duration) *Result {
	cfg := e.cfg
	r := &Result{
		Mode:         cfg.Mode,
		Transport:    e.transport(),
		Targets:      cfg.Targets,
		Concurrency:  cfg.Concurrency,
		Creates:      e.creates.Load(),
		CreateErrors: e.createErrors.Load(),
		Latency:      percentilesMs(latency),
		ErrorSamples: e.reasons.get(),
		Elapsed:      elapsed,
		CreatePhase:  createEnd.Sub(e.t0),
	}
	if cfg.NATSURL != "" {
		r.Targets = []string{cfg.NATSURL}
	}
	if cfg.Floor {
		r.Concurrency = cfg.FloorConns
		r.Targets = []string{} // nothing but the sink was loaded
	} else if s := r.CreatePhase.Seconds(); s > 0 {
		r.CreatePerSec = round3(float64(r.Creates) / s)
	}
	if nc, ok := e.creator.(*natsCreator); ok {
		if stored, published, last, ok := nc.storedResult(); ok {
			// Fire-and-forget: what counts is what the nodes stored.
			r.Creates = stored
			r.CreateErrors += published - stored
			if s := last.Sub(e.t0).Seconds(); stored > 0 && s > 0 {
				r.CreatePerSec = round3(float64(stored) / s)
			}
		}
	}
	s := e.sink
	r.Duplicates = s.dups.Load()
	r.Early = s.early.Load()
	r.Unexpected = s.unexpected.Load()
	r.BadData = s.badData.Load()
	r.Delivered = s.distinct.Load()
	if cfg.Mode.awaited() {
		r.Missing = e.missing()
		late := make([]int64, 0, r.Delivered)
		for seq := range s.counts {
			if s.counts[seq].Load() > 0 {
				late = append(late, s.late[seq].Load())
			}
		}
		r.Lateness = percentilesMs(late)
		if first := e.dueOf(0); r.Delivered > 0 && s.last.Load() > first {
			r.DeliveryPerSec = round3(float64(r.Delivered) / (float64(s.last.Load()-first) / 1e9))
		}
	}
	if e.floor != nil {
		r.DeliveryErrors = e.floor.errs.Load()
		if fr := e.floor.reasons.get(); len(fr) > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("floor deliveries failed: %v", fr))
		}
	}
	switch {
	case cfg.Mode == ModeCreate && r.Creates > 0 && e.label == "" && !cfg.Cleanup:
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d timers remain pending on the targets (due in %s)", r.Creates, cfg.Timeout))
	case cfg.Mode == ModeInstant && e.cutByDue.Load():
		r.Warnings = append(r.Warnings, fmt.Sprintf("only %d of %d timers were created before their due instant; %s", r.Creates, e.planned, leadHint))
	}
	if n := e.behind.Load(); n > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d creates fell behind the schedule and were skipped; lower --rate or %s", n, leadHint))
	}
	if n := e.late.Load(); n > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d creates failed after their due instant had passed; %s", n, leadHint))
	}
	if r.Early > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d deliveries arrived before their due instant", r.Early))
	}
	if r.Unexpected > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d deliveries named no timer of this run (leftovers of earlier runs?)", r.Unexpected))
	}
	return r
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
