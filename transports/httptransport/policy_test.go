package httptransport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
)

func TestPolicyCheckHost(t *testing.T) {
	t.Parallel()
	def, err := httptransport.NewPolicy(nil, nil)
	require.NoError(t, err)
	deny, err := httptransport.NewPolicy([]string{"10.0.0.0/8", "*.internal", "192.0.2.7"}, nil)
	require.NoError(t, err)
	allowNets, err := httptransport.NewPolicy(nil, []string{"127.0.0.0/8"})
	require.NoError(t, err)
	allowNames, err := httptransport.NewPolicy(nil, []string{"*.example.com"})
	require.NoError(t, err)
	metaOK, err := httptransport.NewPolicy(nil, []string{"169.254.0.0/16"})
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		p      *httptransport.Policy
		host   string
		denied bool
	}{
		{"default: metadata", def, "169.254.169.254", true},
		{"default: IPv6 link-local", def, "[fe80::1]", true},
		{"default: AWS IPv6 metadata", def, "fd00:ec2::254", true},
		{"default: unspecified", def, "0.0.0.0", true},
		{"default: IPv4-mapped metadata", def, "::ffff:169.254.169.254", true},
		{"default: loopback", def, "127.0.0.1", false},
		{"default: a name", def, "hooks.example.com", false},
		{"deny CIDR", deny, "10.1.2.3", true},
		{"deny address", deny, "192.0.2.7", true},
		{"deny pattern", deny, "metadata.google.INTERNAL", true},
		{"deny: other address", deny, "192.0.2.8", false},
		{"allow nets: literal out", allowNets, "192.0.2.1", true},
		{"allow nets: literal in", allowNets, "127.0.0.2", false},
		{"allow nets: a name waits for its address", allowNets, "localhost", false},
		{"allow names: match", allowNames, "hooks.example.com", false},
		{"allow names: other", allowNames, "evil.test", true},
		{"allowed metadata", metaOK, "169.254.169.254", false},
	} {
		err := tc.p.CheckHost(tc.host)
		if tc.denied {
			require.ErrorIs(t, err, httptransport.ErrDenied, tc.name)
		} else {
			require.NoError(t, err, tc.name)
		}
	}
	_, err = httptransport.NewPolicy([]string{"10.0.0.0/33"}, nil)
	require.ErrorContains(t, err, "--callback:deny")
	_, err = httptransport.NewPolicy(nil, []string{"[bad"})
	require.ErrorContains(t, err, "--callback:allow")
}

// A name that resolves to a denied address is never dialled: the delivery
// is a final failure naming the policy; the receiver sees nothing. A
// literal denied address is refused at create (Validate).
func TestPolicyAtDial(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := splitHostPort(t, srv.URL)
	p, err := httptransport.NewPolicy([]string{"127.0.0.0/8", "::1/128"}, nil)
	require.NoError(t, err)
	tr := httptransport.New(httptransport.Options{Timeout: 5 * time.Second, Policy: p})
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })

	// "localhost" resolves to a loopback address: refused at dial time.
	cb := skyring.Callback{Transport: "http", Method: "post", URI: "http://localhost:" + port + "/x"}
	require.NoError(t, tr.Validate(cb), "a name passes at create; its address is checked at dial time")
	err = tr.Execute(context.Background(), &skyring.Timer{ID: "p1", Callback: cb})
	require.ErrorIs(t, err, httptransport.ErrDenied)
	require.ErrorIs(t, err, transports.ErrPermanent, "a denied destination is not retried")
	require.Zero(t, hits.Load(), "never dialled")

	lit := skyring.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1:" + port + "/x"}
	var ve *skyring.ValidationError
	require.ErrorAs(t, tr.Validate(lit), &ve)
	require.Equal(t, "callback.uri", ve.Field)
	require.Contains(t, ve.Reason, "callback policy")

	// Without the policy the same callback is delivered.
	open := httptransport.New(httptransport.Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = open.Shutdown(context.Background()) })
	require.NoError(t, open.Execute(context.Background(), &skyring.Timer{ID: "p2", Callback: cb}))
	require.EqualValues(t, 1, hits.Load())
}

func splitHostPort(t *testing.T, rawURL string) (scheme, port, host string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return u.Scheme, u.Port(), u.Hostname()
}
