package httptransport_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
	"github.com/skyring/skyring/transports/transportstest"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tr := newTransport(t, httptransport.Options{})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel() // Execute below must decide without sending anything

	for _, tc := range []struct {
		name, method, uri string
		field             string // "" when valid
		reasonHas         string
	}{
		// The README's and the seed's examples.
		{name: "readme post", method: "post", uri: "http://localhost:9000/hook"},
		{name: "readme put", method: "put", uri: "http://localhost:9000/orders/42/expire"},
		{name: "seed", method: "post", uri: "http://api.someservice.com/hook/timeout"},
		{name: "client example", method: "post", uri: "http://orders/expire"},
		// Every method API.md lists, in any case.
		{name: "patch", method: "patch", uri: "https://example.com/x"},
		{name: "delete", method: "delete", uri: "https://example.com/x"},
		{name: "get", method: "get", uri: "https://example.com/x"},
		{name: "options", method: "options", uri: "https://example.com/x"},
		{name: "head", method: "head", uri: "https://example.com/x"},
		{name: "upper", method: "POST", uri: "http://example.com/x"},
		{name: "mixed", method: "Delete", uri: "http://example.com/x"},
		// URLs with everything a URL may have.
		{name: "scheme upper", method: "post", uri: "HTTPS://Example.COM/x"},
		{name: "port query fragment", method: "post", uri: "http://example.com:8080/a/b?c=1&d=%20#frag"},
		{name: "user info", method: "post", uri: "https://user:secret@example.com/hook"},
		{name: "ipv4", method: "post", uri: "http://127.0.0.1:3000"},
		{name: "ipv6", method: "post", uri: "http://[::1]:3000/"},
		{name: "idn", method: "post", uri: "http://bücher.example/ö"},

		{name: "fetch", method: "fetch", uri: "http://example.com/x", field: "callback.method", reasonHas: `callback.method "fetch"`},
		{name: "FETCH", method: "FETCH", uri: "http://example.com/x", field: "callback.method", reasonHas: `"FETCH"`},
		{name: "trace", method: "trace", uri: "http://example.com/x", field: "callback.method", reasonHas: "post, put, patch, delete, get, options, head"},
		{name: "connect", method: "CONNECT", uri: "http://example.com/x", field: "callback.method", reasonHas: "callback.method"},
		{name: "nats method", method: "publish", uri: "http://example.com/x", field: "callback.method", reasonHas: "callback.method"},
		{name: "trailing space", method: "get ", uri: "http://example.com/x", field: "callback.method", reasonHas: `"get "`},
		{name: "newline", method: "post\n", uri: "http://example.com/x", field: "callback.method", reasonHas: `"post\n"`},
		{name: "empty method", method: "", uri: "http://example.com/x", field: "callback.method", reasonHas: `""`},
		{name: "bad method first", method: "fetch", uri: "not a url", field: "callback.method", reasonHas: "callback.method"},

		{name: "not a url", method: "post", uri: "not a url", field: "callback.uri", reasonHas: `callback.uri "not a url" is not an absolute http or https URL`},
		{name: "ftp", method: "post", uri: "ftp://x", field: "callback.uri", reasonHas: `"ftp://x"`},
		{name: "ftp path", method: "post", uri: "ftp://example.com/x", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "mailto", method: "post", uri: "mailto:a@b.c", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "relative", method: "post", uri: "/relative/path", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "no scheme", method: "post", uri: "example.com/hook", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "host:port only", method: "post", uri: "localhost:9000/hook", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "no host", method: "post", uri: "http://", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "no host path", method: "post", uri: "https:///hook", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "missing slashes", method: "post", uri: "http:example.com", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "empty scheme", method: "post", uri: "://x", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "space in host", method: "post", uri: "http://exa mple.com/", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "leading space", method: "post", uri: " http://example.com/", field: "callback.uri", reasonHas: "callback.uri"},
		{name: "control char", method: "post", uri: "http://example.com/\x01", field: "callback.uri", reasonHas: `\x01`},
		{name: "empty uri", method: "post", uri: "", field: "callback.uri", reasonHas: `callback.uri ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cb := skyring.Callback{Transport: "http", Method: tc.method, URI: tc.uri}
			err := tr.Validate(cb)
			execErr := tr.Execute(cancelled, timer("v", tc.method, tc.uri, `"x"`))
			if tc.field == "" {
				require.NoError(t, err)
				require.Error(t, execErr, "ctx was cancelled")
				require.NotErrorIs(t, execErr, transports.ErrPermanent, "Execute agrees with Validate")
				return
			}
			sentinel := map[string]error{"callback.method": httptransport.ErrBadMethod, "callback.uri": httptransport.ErrBadURI}[tc.field]
			transportstest.RequireRejected(t, err, tc.field, tc.reasonHas, sentinel)
			_, reason := skyring.Status(err)
			requireHeaderSafe(t, reason)

			require.ErrorIs(t, execErr, transports.ErrPermanent, "Execute agrees with Validate")
			require.ErrorIs(t, execErr, sentinel)
		})
	}
}

func TestValidateReasonShape(t *testing.T) {
	t.Parallel()
	tr := newTransport(t, httptransport.Options{})

	// A password in the uri is not echoed back.
	err := tr.Validate(skyring.Callback{Transport: "http", Method: "post", URI: "ftp://user:hunter2@example.com/x"})
	require.ErrorContains(t, err, "callback.uri")
	require.NotContains(t, err.Error(), "hunter2")

	// A huge value is cut, so the reason stays a reasonable header.
	err = tr.Validate(skyring.Callback{Transport: "http", Method: strings.Repeat("é", 10000), URI: "http://x/"})
	require.ErrorContains(t, err, "callback.method")
	require.Less(t, len(err.Error()), 400)
	requireHeaderSafe(t, err.Error())
	err = tr.Validate(skyring.Callback{Transport: "http", Method: "post", URI: "gopher://" + strings.Repeat("a", 1<<20)})
	require.ErrorContains(t, err, "callback.uri")
	require.Less(t, len(err.Error()), 400)

	// Non-ASCII is escaped: the reason becomes an HTTP header.
	err = tr.Validate(skyring.Callback{Transport: "http", Method: "pöst", URI: "http://x/"})
	require.ErrorContains(t, err, `"p\u00f6st"`)
	requireHeaderSafe(t, err.Error())
}

// requireHeaderSafe checks that s can be an x-skyring-reason value as it is:
// printable ASCII, one line.
func requireHeaderSafe(t *testing.T, s string) {
	t.Helper()
	for i := range len(s) {
		require.True(t, s[i] >= ' ' && s[i] < 0x7f, "byte %d of %q", i, s)
	}
}
