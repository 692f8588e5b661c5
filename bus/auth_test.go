package bus_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
)

// asyncErrors connects to s as an API client (no node credentials) and
// collects the permission violations the server reports to it.
func apiClient(t *testing.T, s *server.Server, opts ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	return bustest.Connect(t, s, opts...), errs
}

// waitViolation waits for the server's permission violation naming what.
func waitViolation(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), what) {
				return
			}
		case <-deadline:
			t.Fatalf("no permission violation for %s within 10s", what)
		}
	}
}

// An API client of the embedded server (no node credentials) cannot
// publish or subscribe to the internal subjects, cannot forge events or
// take API requests, sees nothing internal through a wildcard, and still
// uses the API.
func TestAPIClientCannotReachInternalSubjects(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("perm"))
	b := startBus(t, bus.Options{NodeID: h.id, HeartbeatInterval: time.Hour}, h)
	nc, errs := apiClient(t, b.Server())
	members := "_SKYRING.skyring.members"
	relay := "_SKYRING.skyring.relay." + h.id

	// A forged heartbeat is refused by the server: it reaches nobody.
	hb, err := json.Marshal(map[string]any{"kind": "heartbeat", "id": "evil", "http": "203.0.113.9:80", "started": 1})
	require.NoError(t, err)
	require.NoError(t, nc.Publish(members, hb))
	waitViolation(t, errs, `Publish to "`+members+`"`)
	// A goodbye on the member's behalf, a relay and a forged event too.
	require.NoError(t, nc.Publish(members, []byte(`{"kind":"goodbye","id":"`+h.id+`"}`)))
	waitViolation(t, errs, `Publish to "`+members+`"`)
	_, err = nc.Request(relay, []byte{1}, 5*time.Second)
	require.Error(t, err)
	waitViolation(t, errs, `Publish to "`+relay+`"`)
	require.NoError(t, nc.Publish("skyring.events.success", []byte(`{"type":"success","timer":"x"}`)))
	waitViolation(t, errs, `Publish to "skyring.events.success"`)
	require.NoError(t, nc.Publish("skyring.node.leave", []byte(`{"type":"leave","node":"x"}`)))
	waitViolation(t, errs, `Publish to "skyring.node.leave"`)

	// Nor may it listen on the relays, the members or the API requests.
	for _, subj := range []string{relay, members, "_SKYRING.>", "skyring.timer.create"} {
		_, err := nc.QueueSubscribe(subj, "skyring-api", func(*nats.Msg) {})
		require.NoError(t, err) // refused asynchronously
		waitViolation(t, errs, `Subscription to "`+subj+`"`)
	}

	// A wildcard subscription is allowed but gets nothing internal: a
	// node's membership message and relay, then a barrier on a public
	// subject from the same connection (so it arrives after them).
	seen := make(chan string, 64)
	_, err = nc.Subscribe(">", func(m *nats.Msg) { seen <- m.Subject })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	node := connectNode(t, b)
	require.NoError(t, node.Publish(members, []byte(`{"kind":"heartbeat","id":"marker","started":1}`)))
	_, err = node.Request(relay, []byte{1, 0, 0}, 5*time.Second) // a ping
	require.NoError(t, err)
	require.NoError(t, node.Publish("barrier", nil))
	for subj := range seen {
		require.False(t, strings.HasPrefix(subj, "_SKYRING."), "an API client got %s", subj)
		if subj == "barrier" {
			break
		}
	}
	h.waitEvent(t, "seen:marker") // the node's own messages went through
	_, known := h.member("evil")
	require.False(t, known, "the forged member joined")

	// The public API still works for it.
	msg, err := nc.Request("skyring.timer.get", []byte(`{"id":"nope"}`), 5*time.Second)
	require.NoError(t, err)
	require.Contains(t, string(msg.Data), `"status":404`)
}

// The nats transport's connection (CallbackConn) has its own inbox, where
// a receiver may answer a request callback (and no client may listen);
// receivers cannot answer on the node's own inbox; and the callback
// connection cannot publish on Skyring's subjects.
func TestCallbackConnection(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("cb"))
	b := startBus(t, bus.Options{NodeID: h.id, HeartbeatInterval: time.Hour}, h)
	nc, errs := apiClient(t, b.Server())
	_, err := nc.Subscribe("jobs.ask", func(m *nats.Msg) { _ = m.Respond([]byte("answer")) })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	cb := b.CallbackConn()
	require.NotNil(t, cb)
	msg, err := cb.Request("jobs.ask", nil, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "answer", string(msg.Data))

	// A request from the node's own connection cannot be answered by an
	// API client: its inbox is internal.
	inbox := b.Conn().NewRespInbox()
	require.True(t, strings.HasPrefix(inbox, "_SKYRING.skyring.inbox."+h.id+"."), inbox)
	require.NoError(t, b.Conn().PublishRequest("jobs.ask", inbox, nil))
	waitViolation(t, errs, `Publish to "`+inbox+`"`)

	// No client may listen on the callback inboxes.
	_, err = nc.Subscribe("_SKYRING_CB.>", func(*nats.Msg) {})
	require.NoError(t, err)
	waitViolation(t, errs, `Subscription to "_SKYRING_CB.>"`)

	// The callback connection reaches nothing of Skyring's: a watcher
	// with node rights sees none of its publishes there, only the
	// barrier it sends after them.
	watcher := connectNode(t, b)
	seen := make(chan string, 16)
	for _, subj := range []string{"_SKYRING.>", "skyring.>", "barrier.cb"} {
		_, err := watcher.Subscribe(subj, func(m *nats.Msg) { seen <- m.Subject + " " + string(m.Data) })
		require.NoError(t, err)
	}
	require.NoError(t, watcher.Flush())
	for _, subj := range []string{"_SKYRING.skyring.members", "_SKYRING.skyring.relay." + h.id, "skyring.timer.create", "skyring.events.success"} {
		require.NoError(t, cb.Publish(subj, []byte("cb-forged")))
	}
	require.NoError(t, cb.Publish("barrier.cb", []byte("end")))
	for got := range seen {
		require.NotContains(t, got, "cb-forged")
		if got == "barrier.cb end" {
			break
		}
	}
}

// The reflection attack a review found: a client sends itself a message
// whose reply subject is an internal one, then answers it. With
// allow_responses that answer was let through (nats-server does not check
// a publisher's reply subject): a forged member, event, relay. API users
// have no such grant, so the server refuses the answer.
func TestReflectedAnswerRefused(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("refl"))
	b := startBus(t, bus.Options{NodeID: h.id, HeartbeatInterval: time.Hour}, h)
	nc, errs := apiClient(t, b.Server())
	echo := make(chan *nats.Msg, 8)
	_, err := nc.Subscribe("attacker.echo", func(m *nats.Msg) { echo <- m })
	require.NoError(t, err)
	hb, err := json.Marshal(map[string]any{"kind": "heartbeat", "id": "evil", "http": "203.0.113.9:80", "started": 1})
	require.NoError(t, err)
	for _, target := range []string{"_SKYRING.skyring.members", "_SKYRING.skyring.relay." + h.id, "skyring.events.success", "$SYS.REQ.SERVER.PING"} {
		require.NoError(t, nc.PublishRequest("attacker.echo", target, nil))
		m := <-echo
		require.Equal(t, target, m.Reply)
		require.NoError(t, m.Respond(hb))
		waitViolation(t, errs, `Publish to "`+target+`"`)
	}
	_, known := h.member("evil")
	require.False(t, known, "the reflected heartbeat reached the node")
}

// With API tokens, a client of the embedded server needs one (as a token
// or as the password of any user); the node's own connection is unaffected
// and a wrong node password is refused.
func TestAPITokensOnEmbeddedServer(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("tok"))
	b := startBus(t, bus.Options{NodeID: h.id, HeartbeatInterval: time.Hour, APITokens: []string{"tok-old", "tok-new"}}, h)
	url := b.ClientURL()

	_, err := nats.Connect(url)
	require.ErrorIs(t, err, nats.ErrAuthorization)
	_, err = nats.Connect(url, nats.Token("wrong"))
	require.ErrorIs(t, err, nats.ErrAuthorization)
	_, err = nats.Connect(url, nats.UserInfo(bus.NodeUser, "wrong"))
	require.ErrorIs(t, err, nats.ErrAuthorization)
	_, err = nats.Connect(url, nats.UserInfo(bus.NodeUser, "tok-new"))
	require.ErrorIs(t, err, nats.ErrAuthorization, "an API token is no node password")

	for _, opt := range []nats.Option{nats.Token("tok-old"), nats.Token("tok-new"), nats.UserInfo("anyone", "tok-new")} {
		nc, err := nats.Connect(url, opt)
		require.NoError(t, err)
		msg, err := nc.Request("skyring.timer.get", []byte(`{"id":"nope"}`), 5*time.Second)
		require.NoError(t, err)
		require.Contains(t, string(msg.Data), `"status":404`)
		nc.Close()
	}
	// The node password (the cluster secret) is not an API token's
	// alternative for API users: it makes a node.
	nc, err := nats.Connect(url, nats.UserInfo(bus.NodeUser, testSecret))
	require.NoError(t, err)
	nc.Close()
}

// routeConnect speaks the route protocol to a cluster port: INFO, then
// CONNECT with user and pass, then PING; it returns the server's answer
// line (PONG or -ERR) and the INFO line.
func routeConnect(t *testing.T, addr, user, pass string) (answer, info string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	r := bufio.NewReader(conn)
	info, err = r.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(info, "INFO "), info)
	connect, err := json.Marshal(map[string]any{"user": user, "pass": pass, "verbose": false, "pedantic": false, "name": "intruder", "cluster": "skyring", "headers": true})
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "CONNECT %s\r\nPING\r\n", connect)
	require.NoError(t, err)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "closed: " + err.Error(), info
		}
		if strings.HasPrefix(line, "PONG") || strings.HasPrefix(line, "-ERR") {
			return strings.TrimSpace(line), info
		}
	}
}

// The cluster port refuses a route without the cluster secret, and two
// nodes with the same secret route and relay.
func TestRouteNeedsClusterSecret(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("route"))
	b := startBus(t, bus.Options{NodeID: h.id, ClusterPort: -1, HeartbeatInterval: time.Hour}, h)
	addr := b.Server().ClusterAddr().String()

	ans, info := routeConnect(t, addr, "", "")
	require.Contains(t, info, `"auth_required":true`)
	require.Contains(t, ans, "Authorization Violation")
	ans, _ = routeConnect(t, addr, "skyring", "not-the-secret")
	require.Contains(t, ans, "Authorization Violation")
	ans, _ = routeConnect(t, addr, "skyring", testSecret)
	require.Equal(t, "PONG", ans)

	// A node with another secret never routes: its server is refused
	// (which it logs at debug level) and keeps retrying in vain.
	h2 := newFakeHandler(nodeID("route2"))
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b2 := startBus(t, bus.Options{NodeID: h2.id, ClusterPort: -1, HeartbeatInterval: time.Hour, Secret: "another-secret-entirely", Seeds: []string{addr}, Logger: logger}, h2)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "Authorization Violation") {
		require.True(t, time.Now().Before(deadline), "no refused route within 10s:\n%s", logs.String())
		time.Sleep(10 * time.Millisecond)
	}
	require.Zero(t, b.Server().NumRoutes())
	require.Zero(t, b2.Server().NumRoutes())
	require.NotContains(t, logs.String(), "another-secret-entirely", "the secret is never logged")
}

// lockedBuffer is a bytes.Buffer safe for a logger and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Mutual TLS on the routes: the cluster port requires TLS, and two nodes
// with certificates of one CA route and relay.
func TestClusterTLS(t *testing.T) {
	t.Parallel()
	files := writeTLSFiles(t)
	ha, hb := newFakeHandler(nodeID("tls-a")), newFakeHandler(nodeID("tls-b"))
	a := startBus(t, bus.Options{NodeID: ha.id, ClusterPort: -1, HeartbeatInterval: time.Hour, ClusterTLS: files}, ha)
	addr := a.Server().ClusterAddr().String()
	// The cluster port speaks TLS first, and wants a client certificate
	// of the CA.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(files.CAFile)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	firstLine := func(cfg *tls.Config) (string, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		return bufio.NewReader(conn).ReadString('\n')
	}
	_, err = firstLine(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	require.Error(t, err, "no client certificate")
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	require.NoError(t, err)
	line, err := firstLine(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "INFO "), line)

	b := startBus(t, bus.Options{NodeID: hb.id, ClusterPort: -1, HeartbeatInterval: time.Hour, ClusterTLS: files, Seeds: []string{addr}}, hb)
	bustest.WaitForRoutes(t, a.Server(), b.Server())
	ha.waitEvent(t, "seen:"+hb.id)
	relayRoundTrip(t, a, ha.id, hb)

	// Half a configuration is refused at New.
	_, err = bus.New(bus.Options{NodeID: "x", ClusterTLS: bus.TLSFiles{CertFile: files.CertFile}})
	require.ErrorContains(t, err, "cluster TLS")
}

// writeTLSFiles writes a CA and a certificate for 127.0.0.1 and localhost
// signed by it, valid for client and server use.
func writeTLSFiles(t *testing.T) bus.TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skyring test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "skyring node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	f := bus.TLSFiles{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "node.pem"), KeyFile: filepath.Join(dir, "node-key.pem")}
	write := func(path, typ string, der []byte) {
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	}
	write(f.CAFile, "CERTIFICATE", caDER)
	write(f.CertFile, "CERTIFICATE", leafDER)
	write(f.KeyFile, "EC PRIVATE KEY", keyDER)
	return f
}

// With external servers, the node authenticates with an nkey seed file or
// a JWT creds file (nats.go's options); without them it is refused with
// ErrAuth.
func TestExternalNkeyAndCreds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("nkey", func(t *testing.T) {
		t.Parallel()
		ukp, err := nkeys.CreateUser()
		require.NoError(t, err)
		pub, err := ukp.PublicKey()
		require.NoError(t, err)
		seed, err := ukp.Seed()
		require.NoError(t, err)
		seedFile := filepath.Join(dir, "node.nk")
		require.NoError(t, os.WriteFile(seedFile, seed, 0o600))

		opts := natstest.DefaultTestOptions
		opts.Port = server.RANDOM_PORT
		opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
		s := natstest.RunServer(&opts)
		t.Cleanup(s.Shutdown)

		h := newFakeHandler(nodeID("nk"))
		b := startBus(t, bus.Options{NodeID: h.id, Servers: []string{s.ClientURL()}, NkeyFile: seedFile}, h)
		rep, err := b.Relay(ctxTimeout(t, 5*time.Second), h.id, bus.Command{Op: bus.OpGet, ID: "x"})
		require.NoError(t, err)
		require.Equal(t, 404, rep.Status)

		nb, err := bus.New(bus.Options{NodeID: nodeID("nk-none"), Servers: []string{s.ClientURL()}, Logger: testLogger(t)})
		require.NoError(t, err)
		err = nb.Start(ctxTimeout(t, 10*time.Second), newFakeHandler("nk-none"))
		require.ErrorIs(t, err, bus.ErrAuth)
		require.NoError(t, nb.Close())
	})

	t.Run("creds", func(t *testing.T) {
		t.Parallel()
		okp, err := nkeys.CreateOperator()
		require.NoError(t, err)
		opub, err := okp.PublicKey()
		require.NoError(t, err)
		oc := jwt.NewOperatorClaims(opub)
		akp, err := nkeys.CreateAccount()
		require.NoError(t, err)
		apub, err := akp.PublicKey()
		require.NoError(t, err)
		ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
		require.NoError(t, err)
		ukp, err := nkeys.CreateUser()
		require.NoError(t, err)
		upub, err := ukp.PublicKey()
		require.NoError(t, err)
		ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
		require.NoError(t, err)
		useed, err := ukp.Seed()
		require.NoError(t, err)
		creds, err := jwt.FormatUserConfig(ujwt, useed)
		require.NoError(t, err)
		credsFile := filepath.Join(dir, "node.creds")
		require.NoError(t, os.WriteFile(credsFile, creds, 0o600))

		res := &server.MemAccResolver{}
		require.NoError(t, res.Store(apub, ajwt))
		opts := natstest.DefaultTestOptions
		opts.Port = server.RANDOM_PORT
		opts.TrustedOperators = []*jwt.OperatorClaims{oc}
		opts.AccountResolver = res
		s := natstest.RunServer(&opts)
		t.Cleanup(s.Shutdown)

		h := newFakeHandler(nodeID("cr"))
		b := startBus(t, bus.Options{NodeID: h.id, Servers: []string{s.ClientURL()}, CredsFile: credsFile}, h)
		rep, err := b.Relay(ctxTimeout(t, 5*time.Second), h.id, bus.Command{Op: bus.OpGet, ID: "x"})
		require.NoError(t, err)
		require.Equal(t, 404, rep.Status)

		nb, err := bus.New(bus.Options{NodeID: nodeID("cr-none"), Servers: []string{s.ClientURL()}, Logger: testLogger(t)})
		require.NoError(t, err)
		err = nb.Start(ctxTimeout(t, 10*time.Second), newFakeHandler("cr-none"))
		require.ErrorIs(t, err, bus.ErrAuth)
		require.NoError(t, nb.Close())
	})
}

// Credentials are for external servers, cluster TLS and API tokens for the
// embedded one: a mix-up is refused at New.
func TestSecurityOptionsValidated(t *testing.T) {
	t.Parallel()
	for _, o := range []bus.Options{
		{NodeID: "a", CredsFile: "x.creds"},
		{NodeID: "a", NkeyFile: "x.nk"},
		{NodeID: "a", TLS: bus.TLSFiles{CAFile: "ca.pem"}},
		{NodeID: "a", Servers: []string{"nats://127.0.0.1:1"}, APITokens: []string{"t"}},
		{NodeID: "a", Servers: []string{"nats://127.0.0.1:1"}, ClusterTLS: bus.TLSFiles{CAFile: "ca.pem"}},
		{NodeID: "a", Servers: []string{"nats://127.0.0.1:1"}, CredsFile: "x", NkeyFile: "y"},
	} {
		_, err := bus.New(o)
		require.Error(t, err, "%+v", o)
	}
}

// An API request whose reply subject is reserved (internal, the node's own
// public subjects, the server's) is dropped before it runs: the node would
// otherwise publish its answer there with its own rights, e.g. a JSON
// object with an id of the client's choosing on the members subject.
func TestAPIRequestWithReservedReplyDropped(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("reply"))
	// One API handler at a time: requests run in the order they came, so
	// once a later one is answered every earlier one ran or was dropped.
	b := startBus(t, bus.Options{NodeID: h.id, HeartbeatInterval: time.Hour, MaxConcurrent: 1}, h)
	nc, _ := apiClient(t, b.Server())
	body := func(id string) []byte {
		return []byte(`{"id":"` + id + `","timeout":60000,"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:1/x"}}`)
	}
	reserved := []string{"_SKYRING.skyring.members", "_SKYRING.skyring.relay." + h.id, "skyring.events.create", "skyring.timer.cancel", "$SYS.x"}
	for i, reply := range reserved {
		require.NoError(t, nc.PublishRequest("skyring.timer.create", reply, body(fmt.Sprintf("via-reply-%d", i))))
	}
	msg, err := nc.Request("skyring.timer.create", body("after"), 10*time.Second)
	require.NoError(t, err)
	require.Contains(t, string(msg.Data), `"status":201`)
	require.NotNil(t, h.timer("after"))
	for i := range reserved {
		require.Nil(t, h.timer(fmt.Sprintf("via-reply-%d", i)), "the request with reply %s ran", reserved[i])
	}
	// A fire-and-forget create (no reply) still runs.
	require.NoError(t, nc.Publish("skyring.timer.create", body("no-reply")))
	msg, err = nc.Request("skyring.timer.create", body("after-2"), 10*time.Second)
	require.NoError(t, err)
	require.Contains(t, string(msg.Data), `"status":201`)
	deadline := time.Now().Add(10 * time.Second)
	for h.timer("no-reply") == nil {
		require.True(t, time.Now().Before(deadline), "the fire-and-forget create never ran")
		time.Sleep(5 * time.Millisecond)
	}
}
