package bus

import (
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NodeUser is the NATS user a node's own connection authenticates as on
// the embedded server's client port, with Options.Secret as its password
// (a random per-process one without a secret). It alone may use the
// internal subjects (_SKYRING.>). A diagnostic tool given the cluster secret
// connects as it too.
const NodeUser = "skyring-node"

// routeUser is the user the embedded servers' routes authenticate as, with
// Options.Secret as the password.
const routeUser = "skyring"

// APIUser is the name the embedded server gives every other client: API
// clients, event subscribers, receivers of the nats transport. It may use
// any subject but the internal ones (_SKYRING.>), may not forge events
// (<prefix>.events.>, <prefix>.node.>), and may not listen on the API's
// request subjects (<prefix>.timer.>) or on the callback inboxes
// (_SKYRING_CB.>), so it can neither read other clients' requests nor
// answer them in the nodes' stead. It has no allow_responses: with it, a
// client could publish anywhere once by sending itself a message whose
// reply subject is the target (nats-server does not check a publisher's
// reply subject), so that grant is a hole in any deny list.
const APIUser = "skyring-api"

// CallbackUser is the node's second connection, the one the nats transport
// delivers fired timers on: it may publish on no subject of Skyring's or
// the server's (the transport refuses them too) and may subscribe only to
// its own inbox, _SKYRING_CB.<prefix>.<nodeID>.>. API users may publish
// there (a receiver answers a request callback) but not subscribe.
const CallbackUser = "skyring-callback"

// callbackInboxes is the root of the callback connections' inboxes.
const callbackInboxes = "_SKYRING_CB"

// ErrAuth is returned (wrapped) by Start when the node's credentials are
// refused: a wrong Options.Secret on a route is only logged by the server,
// but external servers refusing the node's credentials fail the start.
var ErrAuth = errors.New("bus: NATS authorization refused")

// internalSubjects is what only nodes may publish or subscribe to.
const internalSubjects = "_SKYRING.>"

// apiPermissions are APIUser's permissions (see APIUser).
func apiPermissions(prefix string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Deny: []string{internalSubjects, prefix + ".events.>", prefix + ".node.>", "$SYS.>", "$JS.>"},
		},
		Subscribe: &server.SubjectPermission{
			Deny: []string{internalSubjects, callbackInboxes + ".>", prefix + ".timer.>", "$SYS.>", "$JS.>"},
		},
	}
}

// callbackPermissions are CallbackUser's permissions (see CallbackUser).
func callbackPermissions(prefix, nodeID string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Deny: []string{internalSubjects, callbackInboxes + ".>", "_INBOX.>", prefix + ".>", "$SYS.>", "$JS.>"},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{callbackInbox(prefix, nodeID) + ".>"},
		},
	}
}

// callbackInbox is the inbox prefix of a node's callback connection.
func callbackInbox(prefix, nodeID string) string {
	return callbackInboxes + "." + prefix + "." + nodeID
}

// clientAuth is the embedded server's client authentication: NodeUser with
// the node password gets every subject; anyone else is APIUser, and must
// present one of the API tokens when there are any.
type clientAuth struct {
	nodePass []byte
	tokens   [][]byte
	api      *server.User
	node     *server.User
	callback *server.User
}

func newClientAuth(nodePass string, tokens []string, prefix, nodeID string) *clientAuth {
	a := &clientAuth{
		nodePass: []byte(nodePass),
		api:      &server.User{Username: APIUser, Permissions: apiPermissions(prefix)},
		node:     &server.User{Username: NodeUser},
		callback: &server.User{Username: CallbackUser, Permissions: callbackPermissions(prefix, nodeID)},
	}
	for _, t := range tokens {
		if t != "" {
			a.tokens = append(a.tokens, []byte(t))
		}
	}
	return a
}

// Check implements server.Authentication.
func (a *clientAuth) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false // no leafnode, websocket or MQTT listeners are configured
	}
	o := c.GetOpts()
	if o.Username == NodeUser || o.Username == CallbackUser {
		if len(a.nodePass) == 0 || subtle.ConstantTimeCompare([]byte(o.Password), a.nodePass) != 1 {
			return false
		}
		if o.Username == NodeUser {
			c.RegisterUser(a.node)
		} else {
			c.RegisterUser(a.callback)
		}
		return true
	}
	if len(a.tokens) > 0 && !a.validToken(o.Token) && !a.validToken(o.Password) {
		return false
	}
	c.RegisterUser(a.api)
	return true
}

// validToken compares tok with every token in constant time.
func (a *clientAuth) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	ok := 0
	for _, t := range a.tokens {
		ok |= subtle.ConstantTimeCompare([]byte(tok), t)
	}
	return ok == 1
}

// nodePassword is the password of the node's own connection to its
// embedded server: the cluster secret, or a random one that never leaves
// the process.
func (b *Bus) nodePassword() string {
	if b.opts.Secret != "" {
		return b.opts.Secret
	}
	var r [24]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	return hex.EncodeToString(r[:])
}

// TLSFiles names PEM files for a TLS side: a certificate and its key, and
// the CA that verifies the peer.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
}

func (f TLSFiles) set() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }

// clusterTLS is the route listener's and routes' TLS: mutual, both sides
// verified against CAFile.
func (f TLSFiles) clusterTLS() (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" || f.CAFile == "" {
		return nil, errors.New("bus: cluster TLS needs a certificate, its key and a CA")
	}
	cfg, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: f.CertFile, KeyFile: f.KeyFile, CaFile: f.CAFile, Verify: true,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: cluster TLS: %w", err)
	}
	// A server is both sides of its routes: it verifies the servers it
	// dials against the same CA as those that dial it (as nats-server's
	// own configuration does for a cluster).
	cfg.RootCAs = cfg.ClientCAs
	return cfg, nil
}

// externalAuth are the connection options for external servers: the
// credentials and TLS of Options.
func (o Options) externalAuth() ([]nats.Option, error) {
	var opts []nats.Option
	if o.CredsFile != "" {
		if _, err := os.Stat(o.CredsFile); err != nil {
			return nil, fmt.Errorf("bus: NATS credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.NkeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("bus: NATS nkey seed file %s: %w", o.NkeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.TLS.CAFile))
	}
	if o.TLS.CertFile != "" || o.TLS.KeyFile != "" {
		if o.TLS.CertFile == "" || o.TLS.KeyFile == "" {
			return nil, errors.New("bus: a NATS client certificate needs both the certificate and its key")
		}
		opts = append(opts, nats.ClientCert(o.TLS.CertFile, o.TLS.KeyFile))
	}
	return opts, nil
}

// redactURL hides the password (or token) of a NATS URL: it is fine in a
// log line or /cluster only without it.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
		u.User = url.User("xxxxx") // a bare token
		return u.String()
	}
	scheme := ""
	if i := strings.Index(s, "://"); i >= 0 && i < at {
		scheme = s[:i+3]
	}
	return scheme + "xxxxx" + s[at:]
}

// redactURLs is the redacted, comma-separated list of urls.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redactURL(strings.TrimSpace(u))
	}
	return strings.Join(out, ",")
}
