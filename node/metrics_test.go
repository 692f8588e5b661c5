package node_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/node"
)

// metricValue scrapes GET /metrics of n and returns the value of the
// series name{labels} (counter or gauge); the exposition must parse.
func metricValue(t *testing.T, n *node.Node, name string, labels map[string]string) float64 {
	t.Helper()
	res, err := http.Get("http://" + n.HTTPAddr().String() + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	fam, ok := fams[name]
	require.Truef(t, ok, "family %s", name)
next:
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		if m.Counter != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestCommandsCountedByInterface: a create over the NATS API counts as
// nats, a cancel of an unknown timer over HTTP as an http client error.
func TestCommandsCountedByInterface(t *testing.T) {
	b := setup(t, nil)
	require.NoError(t, b.node.Ready())

	nc, err := nats.Connect(b.node.NATSURL())
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Request("skyring.timer.create",
		[]byte(`{"timeout":60000,"data":"x","callback":{"transport":"rec","method":"post","uri":"x"}}`), 10*time.Second)
	require.NoError(t, err)

	req, err := http.NewRequest(http.MethodDelete, "http://"+b.node.HTTPAddr().String()+"/timer/nope", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode)

	require.Equal(t, 1.0, metricValue(t, b.node, "skyring_timer_commands_total",
		map[string]string{"op": "create", "interface": "nats", "outcome": "ok"}))
	require.Equal(t, 0.0, metricValue(t, b.node, "skyring_timer_commands_total",
		map[string]string{"op": "create", "interface": "http", "outcome": "ok"}))
	require.Equal(t, 1.0, metricValue(t, b.node, "skyring_timer_commands_total",
		map[string]string{"op": "cancel", "interface": "http", "outcome": "client_error"}))
	require.Equal(t, 1.0, metricValue(t, b.node, "skyring_timers_pending", nil))
	require.Equal(t, 1.0, metricValue(t, b.node, "skyring_timers_pending_due", map[string]string{"within": "1m"}))
}

// TestReadyFollowsTheLifecycle: not ready before Start, ready once
// started, not ready once Close began.
func TestReadyFollowsTheLifecycle(t *testing.T) {
	n, err := node.New(node.WithOptions(node.Options{
		HTTPAddr: "127.0.0.1:0", NATSPort: -1, ChannelPort: -1, StorageBackend: "memory",
		Logger: testLogger(t), NoMetrics: true,
	}))
	require.NoError(t, err)
	require.Error(t, n.Ready(), "before Start")
	require.NoError(t, n.Start(context.Background()))
	require.NoError(t, n.Ready())

	res, err := http.Get("http://" + n.HTTPAddr().String() + "/metrics")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode, "NoMetrics: no /metrics")

	require.NoError(t, n.Close())
	err = n.Ready()
	require.Error(t, err, "after Close")
	require.True(t, strings.Contains(err.Error(), "shutting down"), err.Error())
}
