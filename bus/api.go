package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

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
	Error  string          `json:"error,omitempty"`
}

func (b *Bus) apiHandler(op apiOp) nats.MsgHandler {
	return func(m *nats.Msg) {
		if !b.apiPool.submit(func() { b.serveAPI(op, m) }) {
			b.respondAPI(m, op, errorReply(skyring.ErrClosed))
		}
	}
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

// parseListBody reads a list message: a JSON object whose members state,
// limit and cursor are all optional, as the query parameters of GET /timer.
// state and cursor are strings; limit is a JSON number or a string holding
// one (an integer from 1 to skyring.MaxListLimit). null counts as absent,
// and so does an empty payload (a list of everything, DefaultListLimit at
// a time). Other members are ignored; of duplicate members the last wins.
func parseListBody(body []byte) (skyring.ListQuery, error) {
	// A map, not a struct: keys match exactly (encoding/json matches
	// struct fields case-insensitively), as in the other API bodies.
	var v map[string]json.RawMessage
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
	case !json.Valid(trimmed):
		return skyring.ListQuery{}, &skyring.ValidationError{Reason: "Invalid JSON body"}
	case trimmed[0] != '{':
		return skyring.ListQuery{}, &skyring.ValidationError{Reason: "Request body must be a JSON object"}
	default:
		// Decoding into RawMessage members cannot fail on valid JSON.
		_ = json.Unmarshal(trimmed, &v)
	}
	state, err := stringMember("state", v["state"])
	if err != nil {
		return skyring.ListQuery{}, err
	}
	cursor, err := stringMember("cursor", v["cursor"])
	if err != nil {
		return skyring.ListQuery{}, err
	}
	// A number goes to ParseListQuery as written, so that 10 passes and
	// 1.5, 1e2, -1, true or {} fail its check.
	rawLimit := v["limit"]
	limit := string(rawLimit)
	if len(rawLimit) > 0 && rawLimit[0] == '"' || limit == "null" {
		if limit, err = stringMember("limit", rawLimit); err != nil {
			return skyring.ListQuery{}, err
		}
	}
	return skyring.ParseListQuery(state, limit, cursor)
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
