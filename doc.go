// Package skyring holds the shared vocabulary of Skyring, a distributed,
// durable timer service ("setTimeout as a service"): the Timer record and its
// Callback, the validation rules of the public API (ids, timeout, at, data,
// callback), the sentinel errors callers branch on, and the single table that
// maps those errors to HTTP-style status codes and reasons.
//
// It imports only the standard library (and internal/wire, the binary codec
// helpers it shares with bus, which imports only the standard library
// itself) so that every other package of the module (wheel, ring, storage,
// transports, bus, http, node, client) can share these types without import
// cycles. Its API is meant for embedders and is
// kept stable.
package skyring
