// Package client is the Go client of Skyring's public APIs: a typed way to
// create, update, cancel and look up timers, list them and retry the failed
// ones, over HTTP (API.md section 2) or over NATS (API.md section 4), so
// that a Go service never writes Skyring JSON by hand.
//
// Both [HTTPClient] and [NATSClient] implement [Client]:
//
//	c, err := client.NewHTTP("http://127.0.0.1:3000")
//	id, err := c.Create(ctx, client.TimerSpec{
//		Timeout:  30 * time.Second,
//		Data:     map[string]any{"order": 42},
//		Callback: client.Callback{Transport: "http", Method: "post", URI: "https://example.com/hook"},
//	})
//	info, err := c.Get(ctx, id)
//	err = c.Cancel(ctx, id)
//
// Listing pages through the cluster's timers in id order; [ListAll] follows
// the pages' cursors:
//
//	err = client.ListAll(ctx, c, skyring.ListQuery{State: "failed"}, func(info skyring.Info) error {
//		return c.Retry(ctx, info.ID) // a dead letter, delivered again
//	})
//
// Errors answered by a server come back as the root package's sentinels,
// through [skyring.ErrorFromStatus], whichever API carried them:
// errors.Is(err, skyring.ErrTimerNotFound) (404), skyring.ErrTimerExists
// or skyring.ErrNotFailed (409), skyring.ErrInvalid (400; errors.As with *skyring.ValidationError
// gives the server's reason), skyring.ErrNoOwner or skyring.ErrClosed (503),
// skyring.ErrBodyTooLarge (413); any other status is a *skyring.StatusError.
// Failures to reach the server (network errors, NATS timeouts and
// nats.ErrNoResponders, context cancellation) are returned wrapped, so
// errors.Is works on them too.
//
// The client validates only what is cheap and certain before it sends
// anything: a TimerSpec must set exactly one of Timeout and At, and ids must
// follow the id rules of [skyring.ValidateID] (the very function the server
// applies; over HTTP an id travels in a URL path or a header, where an
// invalid one would otherwise be misrouted). Everything else (timeout range,
// at in the future, data shape, known transport) is the server's to judge.
//
// The client needs no lifecycle of its own: it owns no goroutine and no
// connection. An HTTPClient uses the *http.Client it is given (by default
// http.DefaultClient); a NATSClient uses the *nats.Conn it is given, which
// the caller connects and closes.
//
// [VerifyWebhook] checks a signed delivery (Standard Webhooks headers, a node
// started with --webhook:secret) on the receiver's side.
//
// This package imports only the standard library, nats.go, the root
// package skyring and its internal webhook primitives (standard library
// only); the server side never imports it. Its API is meant for
// embedders and is kept stable.
package client
