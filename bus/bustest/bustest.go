// Package bustest starts real, in-process nats-servers for tests: a single
// server (RunServer) or a routed cluster (RunCluster), on random ports,
// stopped at test cleanup. It is for _test.go files only; production code
// never imports it.
//
// Servers are started the way nats-server's own tests do it (its test
// package): no signal handlers, no logging unless NATS_LOGGING=debug (or
// trace) is set in the environment.
package bustest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
)

// ClusterName is the cluster name of RunCluster's servers.
const ClusterName = "bustest"

// RunServer starts an in-process nats-server on a random client port and
// shuts it down at cleanup.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	opts := natstest.DefaultTestOptions
	opts.Port = server.RANDOM_PORT
	s := natstest.RunServer(&opts)
	t.Cleanup(func() { shutdown(s) })
	return s
}

// RunCluster starts n in-process nats-servers routed into one cluster, on
// random client and cluster ports, and returns once every server has a
// route to every other one. The first server is the seed the others route
// to; the rest of the mesh forms by gossip. They shut down at cleanup.
func RunCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("bustest: RunCluster needs at least one server, got %d", n)
	}
	servers := make([]*server.Server, 0, n)
	t.Cleanup(func() {
		for _, s := range servers {
			shutdown(s)
		}
	})
	var seed *url.URL
	for i := range n {
		opts := natstest.DefaultTestOptions
		opts.ServerName = fmt.Sprintf("%s-%d", ClusterName, i)
		opts.Port = server.RANDOM_PORT
		opts.Cluster.Name = ClusterName
		opts.Cluster.Host = "127.0.0.1"
		opts.Cluster.Port = server.RANDOM_PORT
		if seed != nil {
			opts.Routes = []*url.URL{seed}
		}
		s := natstest.RunServer(&opts)
		servers = append(servers, s)
		if seed == nil {
			seed = &url.URL{Scheme: "nats-route", Host: s.ClusterAddr().String()}
		}
	}
	WaitForRoutes(t, servers...)
	return servers
}

// WaitForRoutes waits (up to 10 seconds, then fails the test) until each
// of servers has a route to every other one.
func WaitForRoutes(t testing.TB, servers ...*server.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := routesUp(servers)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bustest: cluster not formed: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func routesUp(servers []*server.Server) error {
	for _, s := range servers {
		rz, err := s.Routez(nil)
		if err != nil {
			return err
		}
		remotes := make(map[string]bool)
		for _, r := range rz.Routes {
			remotes[r.RemoteID] = true
		}
		for _, o := range servers {
			if o != s && !remotes[o.ID()] {
				return fmt.Errorf("%s has no route to %s", s.Name(), o.Name())
			}
		}
	}
	return nil
}

// Connect opens an in-process client connection to s (no TCP) and closes
// it at cleanup.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(s)}, opts...)...)
	if err != nil {
		t.Fatalf("bustest: connecting to %s: %v", s.Name(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func shutdown(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// SlotPort returns a free port on 127.0.0.1 below the kernel's ephemeral
// range, for a server to listen on a moment later (a cluster port that
// every node lists as a seed before any of them starts): a port the kernel
// hands out for a listen on port 0 (another test's free port) is never one
// of these, so it cannot be taken in between.
func SlotPort(t testing.TB) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 11000 {
				low = v
			}
		}
	}
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			t.Fatalf("bustest: closing the probe listener: %v", err)
		}
		return port
	}
	t.Fatal("bustest: no free port below the ephemeral range")
	return 0
}
