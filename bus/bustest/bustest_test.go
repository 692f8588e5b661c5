package bustest_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring/bus/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunServer(t *testing.T) {
	t.Parallel()
	s := bustest.RunServer(t)
	require.True(t, s.Running())
	require.Regexp(t, `^nats://127\.0\.0\.1:\d+$`, s.ClientURL())

	nc, err := nats.Connect(s.ClientURL()) // over TCP
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Subscribe("ping", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	in := bustest.Connect(t, s) // in-process
	m, err := in.Request("ping", nil, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "pong", string(m.Data))
}

func TestRunCluster(t *testing.T) {
	t.Parallel()
	servers := bustest.RunCluster(t, 3)
	require.Len(t, servers, 3)
	for _, s := range servers {
		require.NotNil(t, s.ClusterAddr())
		require.Equal(t, bustest.ClusterName, s.ClusterName())
	}

	// A subscriber on the last server gets what is published on the first
	// once its interest has crossed the routes.
	sub, err := bustest.Connect(t, servers[2]).SubscribeSync("hello")
	require.NoError(t, err)
	pub := bustest.Connect(t, servers[0])
	deadline := time.Now().Add(10 * time.Second)
	for servers[0].GlobalAccount().Interest("hello") == 0 {
		require.True(t, time.Now().Before(deadline), "interest did not propagate")
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	require.NoError(t, pub.Publish("hello", []byte("world")))
	m, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "world", string(m.Data))
}

func TestRunClusterOfOne(t *testing.T) {
	t.Parallel()
	servers := bustest.RunCluster(t, 1)
	require.Len(t, servers, 1)
	require.Zero(t, servers[0].NumRoutes())
}
