package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
)

// apiKind is what a public API subject does. It is the API's own: the relay
// Op is a wire format between nodes and need not have a value per subject.
type apiKind uint8

const (
	apiCreate apiKind = iota
	apiUpdate
	apiCancel
	apiGet
	apiList
	apiRetry
	apiCancelMany
)

type apiOp struct {
	name string // the subject is <prefix>.timer.<name>
	kind apiKind
}

// apiOps are the public API subjects under <prefix>.timer.
var apiOps = []apiOp{
	{"create", apiCreate},
	{"update", apiUpdate},
	{"cancel", apiCancel},
	{"get", apiGet},
	{"list", apiList},
	{"retry", apiRetry},
	{"cancel_many", apiCancelMany},
}

// apiReply is the JSON answer of the public NATS API.
type apiReply struct {
	ID     string        `json:"id,omitempty"`
	Status int           `json:"status"`
	Timer  *skyring.Info `json:"timer,omitempty"`
	// Timers and Cursor are a list page (skyring.ListPage's fields):
	// Timers is set, possibly to an empty slice ("timers":[]), only in a
	// list reply.
	Timers *[]skyring.Info `json:"timers,omitempty"`
	Cursor string          `json:"cursor,omitempty"`
	// Cancelled is the count of a bulk cancel (cancel_many), set only in
	// its reply.
	Cancelled *int   `json:"cancelled,omitempty"`
	Error     string `json:"error,omitempty"`
}

func (b *Bus) apiHandler(op apiOp) nats.MsgHandler {
	return func(m *nats.Msg) {
		if b.reservedReply(m.Reply) {
			// The node would publish its answer there with its own
			// rights: onto the members or a relay subject, a node's
			// inbox, or as a forged event. Such a request is dropped
			// whole, before it runs.
			b.log.Debug("dropping a NATS API request whose reply subject is reserved", "op", op.name, "reply", m.Reply)
			return
		}
		if !b.apiPool.submit(func() { b.serveAPI(op, m) }) {
			b.respondAPI(m, op, errorReply(skyring.ErrClosed))
		}
	}
}

// reservedReply reports whether a reply subject is one no API answer may
// go to: the internal subjects (_SKYRING.>), the node's own public ones
// (<prefix>.>: the API, events) and the server's ($SYS.>, $JS.>).
func (b *Bus) reservedReply(reply string) bool {
	if reply == "" {
		return false
	}
	for _, p := range []string{"_SKYRING.", b.opts.Prefix + ".", "$SYS.", "$JS."} {
		if strings.HasPrefix(reply, p) {
			return true
		}
	}
	return false
}

func errorReply(err error) apiReply {
	status, reason := skyring.Status(err)
	return apiReply{Status: status, Error: reason}
}

// serveAPI carries out one public API message and answers it if it has a
// reply subject.
func (b *Bus) serveAPI(op apiOp, m *nats.Msg) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("panic serving NATS API", "op", op.name, "panic", r)
			b.respondAPI(m, op, errorReply(fmt.Errorf("panic: %v", r)))
		}
	}()
	b.respondAPI(m, op, b.handleAPI(op.kind, m.Data))
}

func (b *Bus) handleAPI(kind apiKind, body []byte) apiReply {
	if len(body) > b.opts.MaxBodySize {
		return errorReply(skyring.ErrBodyTooLarge)
	}
	ctx := b.ctx
	switch kind {
	case apiCreate:
		t, err := skyring.ParseTimer(body, b.parseParams(""))
		if err == nil {
			err = b.h.Create(ctx, t)
		}
		if err != nil {
			return errorReply(err)
		}
		return apiReply{ID: t.ID, Status: http.StatusCreated}
	case apiUpdate:
		id, err := skyring.ParseID(body)
		if err != nil {
			return errorReply(err)
		}
		t, err := skyring.ParseTimer(body, b.parseParams(id))
		if err == nil {
			err = b.h.Update(ctx, t)
		}
		if err != nil {
			return errorReply(err)
		}
		return apiReply{ID: t.ID, Status: http.StatusOK}
	case apiCancel:
		id, err := skyring.ParseID(body)
		if err == nil {
			err = b.h.Cancel(ctx, id)
		}
		if err != nil {
			return errorReply(err)
		}
		return apiReply{ID: id, Status: http.StatusAccepted}
	case apiGet:
		id, err := skyring.ParseID(body)
		if err != nil {
			return errorReply(err)
		}
		info, err := b.h.Get(ctx, id)
		if err != nil {
			return errorReply(err)
		}
		return apiReply{Status: http.StatusOK, Timer: &info}
	case apiList:
		q, err := parseListBody(body)
		if err != nil {
			return errorReply(err)
		}
		page, err := b.h.List(ctx, q)
		if err != nil {
			return errorReply(err)
		}
		if page.Timers == nil {
			page.Timers = []skyring.Info{}
		}
		return apiReply{Status: http.StatusOK, Timers: &page.Timers, Cursor: page.Cursor}
	case apiCancelMany:
		get, err := parseParamsBody(body)
		if err != nil {
			return errorReply(err)
		}
		f, err := skyring.ParseCancelFilter(get)
		if err != nil {
			return errorReply(err)
		}
		n, err := b.h.CancelMatching(ctx, f)
		if err != nil {
			return errorReply(err)
		}
		return apiReply{Status: http.StatusOK, Cancelled: &n}
	case apiRetry:
		id, err := skyring.ParseID(body)
		if err == nil {
			err = b.h.Retry(ctx, id)
		}
		if err != nil {
			return errorReply(err)
		}
		return apiReply{ID: id, Status: http.StatusAccepted}
	default:
		return errorReply(&skyring.StatusError{Status: http.StatusNotFound, Reason: "Not Found"})
	}
}

// parseListBody reads a list message: a JSON object whose members (see
// parseParamsBody) are the query parameters of GET /timer, all optional.
func parseListBody(body []byte) (skyring.ListQuery, error) {
	get, err := parseParamsBody(body)
	if err != nil {
		return skyring.ListQuery{}, err
	}
	return skyring.ParseListParams(get)
}

// parseParamsBody reads a list or cancel_many message: a JSON object whose
// members are the query parameters of GET or DELETE /timer. state,
// cursor, prefix and host are strings; limit, due_after and due_before a
// JSON number or a string holding one (due_after and due_before may also
// be an RFC 3339 time); all a boolean or "true"/"false". null counts as
// absent, and so does an empty payload. Other members are ignored; of
// duplicate members the last wins. It returns the members' values by name
// for skyring.ParseListParams and skyring.ParseCancelFilter.
func parseParamsBody(body []byte) (func(string) string, error) {
	// A map, not a struct: keys match exactly (encoding/json matches
	// struct fields case-insensitively), as in the other API bodies.
	var v map[string]json.RawMessage
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
	case !json.Valid(trimmed):
		return nil, &skyring.ValidationError{Reason: "Invalid JSON body"}
	case trimmed[0] != '{':
		return nil, &skyring.ValidationError{Reason: "Request body must be a JSON object"}
	default:
		// Decoding into RawMessage members cannot fail on valid JSON.
		_ = json.Unmarshal(trimmed, &v)
	}
	vals := map[string]string{}
	for _, name := range []string{skyring.ParamState, skyring.ParamCursor, skyring.ParamPrefix, skyring.ParamHost} {
		s, err := stringMember(name, v[name])
		if err != nil {
			return nil, err
		}
		vals[name] = s
	}
	// A number or boolean goes to the parser as written, so that 10
	// passes and 1.5, 1e2, -1, {} fail its check.
	for _, name := range []string{skyring.ParamLimit, skyring.ParamDueAfter, skyring.ParamDueBefore, skyring.ParamAll} {
		raw := v[name]
		val := string(raw)
		if len(raw) > 0 && raw[0] == '"' || val == "null" {
			var err error
			if val, err = stringMember(name, raw); err != nil {
				return nil, err
			}
		}
		vals[name] = val
	}
	return func(name string) string { return vals[name] }, nil
}

// stringMember reads the member name of a list message: a JSON string, or
// null or absent for "".
func stringMember(name string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &skyring.ValidationError{Field: name, Reason: name + " must be a string"}
	}
	return s, nil
}

func (b *Bus) parseParams(id string) skyring.ParseParams {
	return skyring.ParseParams{Now: b.opts.Now(), MaxTimeout: b.opts.MaxTimeout, ID: id, IDField: true}
}

func (b *Bus) respondAPI(m *nats.Msg, op apiOp, rep apiReply) {
	if m.Reply == "" {
		if rep.Error != "" {
			b.log.Debug("fire-and-forget NATS API message failed", "op", op.name, "status", rep.Status, "reason", rep.Error)
		}
		return
	}
	data, err := json.Marshal(rep)
	if err != nil {
		b.log.Error("encoding NATS API reply", "op", op.name, "err", err)
		return
	}
	err = m.Respond(data)
	if errors.Is(err, nats.ErrMaxPayload) {
		// A list page of big timers (or one big timer) that NATS cannot
		// carry: say so, rather than leave the requester to time out.
		reason := fmt.Sprintf("The reply (%d bytes) exceeds the NATS max payload", len(data))
		if nc := b.nc.Load(); nc != nil {
			reason = fmt.Sprintf("The reply (%d bytes) exceeds the NATS max payload (%d bytes)", len(data), nc.MaxPayload())
		}
		if op.kind == apiList {
			reason += ": ask for fewer timers (a smaller limit)"
		}
		b.log.Warn("NATS API reply too large", "op", op.name, "bytes", len(data))
		data, _ = json.Marshal(apiReply{Status: http.StatusInternalServerError, Error: reason})
		err = m.Respond(data)
	}
	if err != nil {
		b.log.Debug("answering NATS API message", "op", op.name, "err", err)
	}
}
