package loadgen_test

import (
	"context"
	"fmt"
	"net"

	"github.com/skyring/skyring/internal/loadgen"
)

// Run drives creates against a local server; here the trivial baseline
// handler stands in for a Skyring node.
func ExampleRun() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := loadgen.ServeTrivial(ln)
	defer srv.Close()

	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Targets:     []string{"http://" + ln.Addr().String()},
		Mode:        loadgen.ModeCreate,
		Concurrency: 4,
		Count:       100,
	}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("creates:", res.Creates, "errors:", res.CreateErrors)
	// Output: creates: 100 errors: 0
}

// Non-loopback targets are refused before anything is sent.
func ExampleRun_refused() {
	_, err := loadgen.Run(context.Background(), loadgen.Config{
		Targets: []string{"http://192.0.2.7:3000"},
	}, nil)
	fmt.Println(err)
	// Output: target "http://192.0.2.7:3000": loadgen: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed
}
