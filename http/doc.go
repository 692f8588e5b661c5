// Package http is Skyring's public HTTP edge (API.md section 2): it routes
// requests, limits and reads bodies, validates ids and timer bodies with the
// rules of the root package, sets the Location and x-skyring-reason headers,
// maps errors to status codes, and hands every valid command to a [Service]
// (implemented by the node).
//
// It must not decide ownership, relay, store or arm timers: that is the
// node's job behind [Service]. It imports only the standard library and the
// root package github.com/skyring/skyring.
//
// Routes (anything else, including a known path with another method, is a
// 404 with the JSON body {"message":"Not Found"} and x-skyring-reason: Not
// Found):
//
//	POST   /timer      201, Location: /timer/<id>   (id from x-timer-id or a new UUID)
//	GET    /timer      200, JSON skyring.ListPage   (?state=&limit=&cursor=)
//	PUT    /timer/:id  200
//	DELETE /timer/:id  202
//	GET    /timer/:id  200, JSON skyring.Info
//	POST   /timer/:id/retry  202   (re-arms a failed timer; 409 if it has not failed)
//	GET    /ping       200
//	GET    <Options.Extra path>  served by that handler
//
// Every error answer carries x-skyring-reason with a one-line reason and an
// empty body (except the route 404 above). Successful timer answers have an
// empty body, except the two GETs'.
//
// The Go API of this package is internal to Skyring and may change; embedders
// use the node package.
package http
