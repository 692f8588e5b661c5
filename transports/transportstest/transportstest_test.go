package transportstest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/transportstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mem is an in-process transport used to check the suite itself: the URI
// names a sink, the method the behaviour.
type mem struct {
	sinks  *sync.Map // uri → *transportstest.Sink
	closed atomic.Bool
}

func (m *mem) Name() string { return "mem" }

func (m *mem) Execute(ctx context.Context, t *skyring.Timer) error {
	if m.closed.Load() {
		return skyring.ErrClosed
	}
	switch t.Callback.Method {
	case "ok":
		s, ok := m.sinks.Load(t.Callback.URI)
		if !ok {
			return errors.New("no such sink")
		}
		body, _ := t.Body()
		s.(*transportstest.Sink).Record(body)
		return nil
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	default:
		return errors.New("failed")
	}
}

func (m *mem) Shutdown(context.Context) error {
	m.closed.Store(true)
	return nil
}

func TestExerciseMem(t *testing.T) {
	t.Parallel()
	var sinks sync.Map
	var n atomic.Int64
	transportstest.Exercise(t, transportstest.Harness{
		New: func(*testing.T) transports.Transport { return &mem{sinks: &sinks} },
		Endpoint: func(_ *testing.T, b transportstest.Behaviour) (skyring.Callback, *transportstest.Sink) {
			uri := fmt.Sprintf("sink-%d", n.Add(1))
			s := transportstest.NewSink()
			sinks.Store(uri, s)
			method := map[transportstest.Behaviour]string{
				transportstest.Succeed: "ok", transportstest.Fail: "fail", transportstest.Hang: "hang",
			}[b]
			return skyring.Callback{Transport: "mem", Method: method, URI: uri}, s
		},
		ClosedAfterShutdown: true,
	})
}

// validatingMem is mem that also rejects, at create and at delivery, any
// method other than ok, fail and hang.
type validatingMem struct{ mem }

func (m *validatingMem) Validate(cb skyring.Callback) error {
	switch cb.Method {
	case "ok", "fail", "hang":
		return nil
	}
	return &skyring.ValidationError{Field: "callback.method", Reason: fmt.Sprintf("callback.method %q is not ok, fail or hang", cb.Method)}
}

func (m *validatingMem) Execute(ctx context.Context, t *skyring.Timer) error {
	if err := m.Validate(t.Callback); err != nil {
		return transports.Permanent(err)
	}
	return m.mem.Execute(ctx, t)
}

func TestExerciseValidatingMem(t *testing.T) {
	t.Parallel()
	var sinks sync.Map
	var n atomic.Int64
	transportstest.Exercise(t, transportstest.Harness{
		New: func(*testing.T) transports.Transport { return &validatingMem{mem{sinks: &sinks}} },
		Endpoint: func(_ *testing.T, b transportstest.Behaviour) (skyring.Callback, *transportstest.Sink) {
			uri := fmt.Sprintf("vsink-%d", n.Add(1))
			s := transportstest.NewSink()
			sinks.Store(uri, s)
			method := map[transportstest.Behaviour]string{
				transportstest.Succeed: "ok", transportstest.Fail: "fail", transportstest.Hang: "hang",
			}[b]
			return skyring.Callback{Transport: "mem", Method: method, URI: uri}, s
		},
		ClosedAfterShutdown: true,
		Invalid: []skyring.Callback{
			{Transport: "mem", Method: "shout", URI: "x"},
			{Transport: "mem", Method: "OK", URI: "x"},
		},
	})
}

// The recorder passes the suite where its behaviour fits: it always
// "delivers", so only check it through the Recorder tests below; here check
// Behaviour strings used in subtest names.
func TestBehaviourString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "succeed", transportstest.Succeed.String())
	require.Equal(t, "fail", transportstest.Fail.String())
	require.Equal(t, "hang", transportstest.Hang.String())
	require.Equal(t, "Behaviour(9)", transportstest.Behaviour(9).String())
}

func TestSink(t *testing.T) {
	t.Parallel()
	var s transportstest.Sink // zero value is ready
	buf := []byte("one")
	done := make(chan [][]byte)
	go func() { done <- s.Wait(t, 2) }()
	s.Record(buf)
	buf[0] = 'X' // Record copied it
	s.Record([]byte("two"))
	got := <-done
	require.Equal(t, [][]byte{[]byte("one"), []byte("two")}, got)
	require.Equal(t, 2, s.Len())
	require.Equal(t, got, s.Bodies())
}

func TestRecorder(t *testing.T) {
	t.Parallel()
	r := transportstest.NewRecorder("")
	require.Equal(t, "recorder", r.Name())
	require.Equal(t, "rec", transportstest.NewRecorder("rec").Name())

	tm := transportstest.NewTimer("a", skyring.Callback{Transport: "recorder", Method: "m", URI: "u"}, `{"k":1}`)
	require.NoError(t, r.Execute(context.Background(), tm))
	tm.Data[2] = 'X' // the recorder kept its own copy
	boom := errors.New("boom")
	r.SetError(boom)
	require.ErrorIs(t, r.Execute(context.Background(), transportstest.NewTimer("b", tm.Callback, "")), boom)
	r.SetError(nil)

	require.Equal(t, []string{"a", "b"}, r.IDs())
	require.Equal(t, 2, r.Count())
	got := r.Timers()
	require.JSONEq(t, `{"k":1}`, string(got[0].Data))
	require.Equal(t, tm.Callback, got[0].Callback)

	require.NoError(t, r.Shutdown(context.Background()))
	r.SetShutdownError(boom)
	require.ErrorIs(t, r.Shutdown(context.Background()), boom)
	require.Equal(t, 2, r.Shutdowns())
}

func TestRecorderWaitAndBlock(t *testing.T) {
	t.Parallel()
	r := transportstest.NewRecorder("rec")
	release := make(chan struct{})
	r.SetFunc(transportstest.Block(release))

	changed := r.Changed()
	results := make(chan error, 3)
	for i := range 3 {
		go func() {
			results <- r.Execute(context.Background(), transportstest.NewTimer(fmt.Sprint(i), skyring.Callback{}, ""))
		}()
	}
	<-changed
	ts := r.Wait(t, 3) // all three started, all blocked
	require.Len(t, ts, 3)
	require.Empty(t, results)
	close(release)
	for range 3 {
		require.NoError(t, <-results)
	}

	// A blocked execution ends with its ctx.
	r.SetFunc(transportstest.Block(make(chan struct{})))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Execute(ctx, transportstest.NewTimer("late", skyring.Callback{}, "")), context.DeadlineExceeded)

	// WaitN gives up with its ctx.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	ts, err := r.WaitN(ctx2, 10)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, ts, 4)
}
