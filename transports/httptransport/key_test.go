package httptransport_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
)

// TestKey: an http callback's destination is its URL's host:port, lower
// case, the port defaulted from the scheme; the registry prefixes the
// transport's name.
func TestKey(t *testing.T) {
	t.Parallel()
	tr := httptransport.New(httptransport.Options{})
	for uri, want := range map[string]string{
		"http://Example.com/a":         "example.com:80",
		"https://example.com/b?c=d":    "example.com:443",
		"HTTPS://example.com:8443/":    "example.com:8443",
		"http://user:pw@127.0.0.1:9/x": "127.0.0.1:9",
		"http://[::1]:8080/":           "[::1]:8080",
		"not a url":                    "",
		"http://%zz":                   "",
	} {
		require.Equal(t, want, tr.Key(skyring.Callback{Transport: "http", URI: uri}), uri)
	}
	r, err := transports.NewRegistry(tr)
	require.NoError(t, err)
	require.Equal(t, "http example.com:443", r.Key(skyring.Callback{Transport: "http", URI: "https://example.com/"}))
	require.Equal(t, "http", r.Key(skyring.Callback{Transport: "http", URI: "::"}), "no host: the transport")
	require.Equal(t, "nope", r.Key(skyring.Callback{Transport: "nope"}), "unknown transport: its name")
}
