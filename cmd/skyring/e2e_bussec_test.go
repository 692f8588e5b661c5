package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

// violations connects to url and collects the permission violations the
// server reports to the connection.
func violations(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc, errs
}

// refused waits for the server to refuse what (a "Publish to …" or
// "Subscription to …").
func refused(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), what) {
				return
			}
		case <-deadline:
			t.Fatalf("the server did not refuse %s within 10s", what)
		}
	}
}

// TestBusSecurityEmbedded: on a two-node cluster whose routes are
// authenticated by the cluster secret, a NATS client without node
// credentials cannot publish membership or relay messages (the server
// refuses them), cannot listen on relays, and the ring stays as it was; a
// node with the wrong secret never joins; the secret appears in no log and
// no /cluster answer.
func TestBusSecurityEmbedded(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	c := newEmbeddedCluster(t, skyringBin, 3)
	nodes := c.startN(2)
	n0, n1 := nodes[0], nodes[1]

	api, errs := violations(t, n0.NATSURL)
	members := "_SKYRING.skyring.members"
	relay := "_SKYRING.skyring.relay." + n1.Node
	hb, err := json.Marshal(map[string]any{"kind": "heartbeat", "id": "evil", "http": "203.0.113.9:80", "timers": 0, "started": 1})
	require.NoError(t, err)
	require.NoError(t, api.Publish(members, hb))
	refused(t, errs, `Publish to "`+members+`"`)
	require.NoError(t, api.Publish(members, []byte(`{"kind":"goodbye","id":"`+n1.Node+`"}`)))
	refused(t, errs, `Publish to "`+members+`"`)
	_, err = api.Request(relay, []byte{1, 0, 0}, 5*time.Second)
	require.Error(t, err)
	refused(t, errs, `Publish to "`+relay+`"`)
	_, err = api.Subscribe(relay, func(*nats.Msg) {})
	require.NoError(t, err)
	refused(t, errs, `Subscription to "`+relay+`"`)
	_, err = api.QueueSubscribe("skyring.timer.create", "skyring-api", func(*nats.Msg) {})
	require.NoError(t, err)
	refused(t, errs, `Subscription to "skyring.timer.create"`)
	c.waitConverged(nodes, convergeWait) // no evil member, n1 not dropped

	// The public NATS API still works for that client, and the cluster
	// relays across the authenticated route: timers created through n0
	// land on both nodes and are all delivered.
	ids := make([]string, 0, 20)
	for i := range 20 {
		id := fmt.Sprintf("sec-%d", i)
		r := natsRequest(t, api, "skyring.timer.create", with(body(s, "/sec/"+id), "id", id, "timeout", 300))
		require.Equal(t, 201, r.Status, r.Error)
		ids = append(ids, id)
	}
	counts := map[string]int{}
	for _, id := range ids {
		s.waitPath(t, "/sec/"+id, deliverWait)
		counts[n0.getTimer(t, id).Node]++
	}
	t.Logf("deliveries by node: %v", counts)
	require.Len(t, counts, 2, "both nodes owned some (20 ids; one owning all has odds of 1 in 500,000)")

	// With the secret, a client is a node: it may watch the members.
	nodeConn, err := nats.Connect(n0.NATSURL, nats.UserInfo("skyring-node", e2eClusterSecret))
	require.NoError(t, err)
	t.Cleanup(nodeConn.Close)
	sub, err := nodeConn.SubscribeSync(members)
	require.NoError(t, err)
	_, err = sub.NextMsg(10 * time.Second)
	require.NoError(t, err, "a heartbeat reaches a client with the node credentials")

	// A node with another secret: its routes are refused (it logs the
	// refusal at debug level), so it stays alone and the others never
	// see it.
	intruder := c.start("--channel:secret", "not-the-cluster-secret", "--log:level", "debug")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(intruder.Output(), "Authorization Violation") {
		require.True(t, time.Now().Before(deadline), "the intruder's route was never refused")
		time.Sleep(20 * time.Millisecond)
	}
	c.waitConverged(nodes, convergeWait)
	c.waitConverged([]*cnode{intruder}, convergeWait)

	for _, n := range append(nodes, intruder) {
		r := n.do(t, http.MethodGet, "/cluster", nil)
		require.Equal(t, http.StatusOK, r.Status)
		require.NotContains(t, string(r.Body), e2eClusterSecret)
		require.NotContains(t, n.Output(), e2eClusterSecret, "%s logged the secret", n.Name)
		require.NotContains(t, n.Output(), "not-the-cluster-secret", "%s logged the secret", n.Name)
	}
}

// TestNATSAPIToken: with --http:token the embedded server's clients need a
// token too (nats.Token); the HTTP API and NATS API are guarded alike.
func TestNATSAPIToken(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t, "--http:token", "tok-one", "--http:token", "tok-two")
	_, err := nats.Connect(p.NATSURL)
	require.ErrorIs(t, err, nats.ErrAuthorization)
	_, err = nats.Connect(p.NATSURL, nats.Token("wrong"))
	require.ErrorIs(t, err, nats.ErrAuthorization)
	nc, err := nats.Connect(p.NATSURL, nats.Token("tok-two"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	r := natsRequest(t, nc, "skyring.timer.create", with(body(s, "/tok"), "id", "tok", "timeout", 1))
	require.Equal(t, 201, r.Status, r.Error)
	s.waitPath(t, "/tok", deliverWait)
}

// nkeyUser is an nkey user: its public key and a seed file.
type nkeyUser struct {
	Pub, SeedFile string
}

func newNkeyUser(t *testing.T, name string) nkeyUser {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), name+".nk")
	require.NoError(t, os.WriteFile(f, seed, 0o600))
	return nkeyUser{Pub: pub, SeedFile: f}
}

// TestExternalNATSWithNkeys: an external NATS cluster of two servers,
// configured as the README says (the nodes' nkey may use every subject, the
// API clients' may not use _SKYRING.> or forge events): two skyring nodes,
// one on each server, with --nats:nkey, relay and deliver as before; an API
// client cannot publish membership messages; a node without credentials
// does not start.
func TestExternalNATSWithNkeys(t *testing.T) {
	t.Parallel()
	nodeKey, apiKey := newNkeyUser(t, "node"), newNkeyUser(t, "api")
	// The README's permissions for API users: no allow_responses (with it,
	// a client can publish anywhere once by answering a message it sent
	// itself with an internal reply subject).
	apiPerms := &server.Permissions{
		Publish:   &server.SubjectPermission{Deny: []string{"_SKYRING.>", "skyring.events.>", "skyring.node.>", "$SYS.>", "$JS.>"}},
		Subscribe: &server.SubjectPermission{Deny: []string{"_SKYRING.>", "_SKYRING_CB.>", "skyring.timer.>", "$SYS.>", "$JS.>"}},
	}
	run := func(name string, routes ...*url.URL) *server.Server {
		o := natstest.DefaultTestOptions
		o.ServerName = name
		o.Host, o.Port = "127.0.0.1", -1
		o.Cluster = server.ClusterOpts{Name: "ext", Host: "127.0.0.1", Port: -1, Username: "route", Password: "route-secret-for-the-test"}
		o.Routes = routes
		o.Nkeys = []*server.NkeyUser{{Nkey: nodeKey.Pub}, {Nkey: apiKey.Pub, Permissions: apiPerms}}
		s := natstest.RunServer(&o)
		t.Cleanup(s.Shutdown)
		return s
	}
	s1 := run("ext-1")
	s2 := run("ext-2", &url.URL{Scheme: "nats-route", Host: s1.ClusterAddr().String(), User: url.UserPassword("route", "route-secret-for-the-test")})
	deadline := time.Now().Add(20 * time.Second)
	for s1.NumRoutes() == 0 || s2.NumRoutes() == 0 {
		require.True(t, time.Now().Before(deadline), "the NATS servers did not route")
		time.Sleep(10 * time.Millisecond)
	}

	s := newSink(t)
	c := &cluster{t: t, bin: skyringBin, args: fastMembership}
	a := c.start("--nats:hosts", s1.ClientURL(), "--nats:nkey", nodeKey.SeedFile)
	b := c.start("--nats:hosts", s2.ClientURL(), "--nats:nkey", nodeKey.SeedFile)
	c.waitConverged([]*cnode{a, b}, convergeWait)

	opt, err := nats.NkeyOptionFromSeed(apiKey.SeedFile)
	require.NoError(t, err)
	api, errs := violations(t, s2.ClientURL(), opt)
	require.NoError(t, api.Publish("_SKYRING.skyring.members", []byte(`{"kind":"heartbeat","id":"evil","started":1}`)))
	refused(t, errs, `Publish to "_SKYRING.skyring.members"`)

	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("ext-%d", i)
		r := natsRequest(t, api, "skyring.timer.create", with(body(s, "/ext/"+id), "id", id, "timeout", 300))
		require.Equal(t, 201, r.Status, r.Error)
		ids = append(ids, id)
	}
	counts := map[string]int{}
	for _, id := range ids {
		s.waitPath(t, "/ext/"+id, deliverWait)
		counts[a.getTimer(t, id).Node]++
	}
	t.Logf("deliveries by node: %v", counts)
	require.Len(t, counts, 2, "both nodes owned some (20 ids; one owning all has odds of 1 in 500,000)")
	c.waitConverged([]*cnode{a, b}, convergeWait) // no evil member

	// Without credentials the node is refused and says so.
	_, stderr, code := runCLI(t, 20*time.Second, nil, "run", "-p", "-1", "--storage:backend", "memory", "--nats:hosts", s1.ClientURL())
	require.NotZero(t, code)
	require.Contains(t, stderr, "authorization")
}

// TestComposeNATSConfig runs a NATS server on the compose layout's own
// configuration (compose/nats.conf) and a skyring node on it as the compose
// file does (skyring-node with its password in --nats:hosts): the node
// works; an API client (user api) uses the API but is refused on the
// internal subjects; a client without a password is refused; the password
// shows in neither the node's log nor /cluster.
func TestComposeNATSConfig(t *testing.T) {
	// Not parallel: the configuration reads its passwords from the
	// environment.
	t.Setenv("NATS_NODE_PASSWORD", "compose-node-password")
	t.Setenv("NATS_API_PASSWORD", "compose-api-password")
	t.Setenv("NATS_ROUTE_PASSWORD", "compose-route-password")
	o, err := server.ProcessConfigFile("../../compose/nats.conf")
	require.NoError(t, err)
	o.Host, o.Port, o.HTTPPort = "127.0.0.1", -1, 0
	o.Cluster.Host, o.Cluster.Port = "127.0.0.1", -1
	o.NoLog, o.NoSigs = true, true
	require.Equal(t, "route", o.Cluster.Username, "routes are authenticated")
	ns := natstest.RunServer(o)
	t.Cleanup(ns.Shutdown)
	addr := ns.Addr().String()

	s := newSink(t)
	p := startNode(t, "--nats:hosts", "nats://skyring-node:compose-node-password@"+addr)
	_, err = nats.Connect("nats://" + addr)
	require.ErrorIs(t, err, nats.ErrAuthorization)
	api, errs := violations(t, "nats://"+addr, nats.UserInfo("api", "compose-api-password"))
	require.NoError(t, api.Publish("_SKYRING.skyring.members", []byte(`{"kind":"heartbeat","id":"evil","started":1}`)))
	refused(t, errs, `Publish to "_SKYRING.skyring.members"`)
	r := natsRequest(t, api, "skyring.timer.create", with(body(s, "/compose"), "id", "compose", "timeout", 1))
	require.Equal(t, 201, r.Status, r.Error)
	s.waitPath(t, "/compose", deliverWait)

	v := p.do(t, http.MethodGet, "/cluster", nil)
	require.Equal(t, http.StatusOK, v.Status)
	require.NotContains(t, string(v.Body), "compose-node-password")
	require.Contains(t, string(v.Body), addr)
	require.NotContains(t, p.Output(), "compose-node-password")
}

// TestNATSRequestCallbackAnswered: with the real binary, a receiver of a
// nats "request" callback (an API client of the embedded server, with no
// special rights) answers on the node's callback inbox and the timer is
// delivered; a receiver that does not answer fails it.
func TestNATSRequestCallbackAnswered(t *testing.T) {
	t.Parallel()
	p := startNode(t, "--delivery:attempts", "1", "--delivery:timeout", "2s")
	nc, err := nats.Connect(p.NATSURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	replies := make(chan string, 4)
	_, err = nc.Subscribe("jobs.ask", func(m *nats.Msg) {
		replies <- m.Reply
		_ = m.Respond([]byte("done"))
	})
	require.NoError(t, err)
	_, err = nc.Subscribe("jobs.silent", func(*nats.Msg) {}) // never answers
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	for _, c := range []struct{ id, subject, state string }{
		{"req-answered", "jobs.ask", "delivered"},
		{"req-silent", "jobs.silent", "failed"},
	} {
		b := map[string]any{"timeout": 1, "data": "hi", "callback": map[string]any{"transport": "nats", "method": "request", "uri": c.subject}}
		r := p.do(t, http.MethodPost, "/timer", b, "x-timer-id", c.id)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		deadline := time.Now().Add(deliverWait)
		for {
			info, g := p.tryTimer(t, c.id)
			if g.Status == http.StatusOK && info.State == c.state {
				break
			}
			require.True(t, time.Now().Before(deadline), "%s: state %q, want %q", c.id, info.State, c.state)
			time.Sleep(20 * time.Millisecond)
		}
	}
	select {
	case reply := <-replies:
		require.True(t, strings.HasPrefix(reply, "_SKYRING_CB.skyring."+p.Node+"."), "the request's reply subject %s", reply)
	default:
		t.Fatal("the receiver never got the request")
	}
}
