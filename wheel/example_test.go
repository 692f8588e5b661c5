package wheel_test

import (
	"context"
	"fmt"
	"time"

	"github.com/skyring/skyring/wheel"
)

// The pure core: time is an argument, nothing runs in the background.
func Example() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	ms := int64(time.Millisecond)

	w := wheel.New[string](start, time.Millisecond)
	w.Add(start+1500*ms, "reminder")
	cancelled := w.Add(start+2*ms, "cancelled")
	w.Add(start+ms/2, "soon")
	w.Add(start+365*24*3600*1000*ms, "next year")
	w.Remove(cancelled)

	next, _ := w.Next()
	fmt.Println("sleep for", time.Duration(next-start))

	w.Advance(start+1499*ms, func(v string) { fmt.Println("fired:", v) })
	fmt.Println("pending:", w.Len())
	w.Advance(start+1500*ms, func(v string) { fmt.Println("fired:", v) })
	fmt.Println("pending:", w.Len())
	// Output:
	// sleep for 500µs
	// fired: soon
	// pending: 2
	// fired: reminder
	// pending: 1
}

// A driver hands expired values to Fire from its own goroutine. Here it runs
// on a FakeClock, as in tests.
func ExampleDriver() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := wheel.NewFakeClock(start)
	fired := make(chan []string, 1)
	d, err := wheel.NewDriver(wheel.DriverOptions[string]{
		Clock: clock,
		Fire: func(batch []string) {
			fired <- append([]string(nil), batch...) // the batch slice is reused
		},
	})
	if err != nil {
		panic(err)
	}
	if err := d.Start(context.Background()); err != nil {
		panic(err)
	}
	defer d.Close()

	d.Add(start.Add(time.Second).UnixNano(), "timer-1")
	d.Add(start.Add(time.Hour).UnixNano(), "timer-2")

	clock.Advance(time.Second)
	fmt.Println(<-fired)

	// Close stops the driver; what is still pending can be handed off.
	d.Close()
	fmt.Println(d.Drain())
	// Output:
	// [timer-1]
	// [timer-2]
}
