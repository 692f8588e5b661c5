package bus

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
)

type apiOp struct {
	name string
	op   Op
}

// apiOps are the public API subjects under <prefix>.timer.
var apiOps = []apiOp{
	{"create", OpCreate},
	{"update", OpUpdate},
	{"cancel", OpCancel},
	{"get", OpGet},
}

// apiReply is the JSON answer of the public NATS API.
type apiReply struct {
	ID     string        `json:"id,omitempty"`
	Status int           `json:"status"`
	Timer  *skyring.Info `json:"timer,omitempty"`
	Error  string        `json:"error,omitempty"`
}

func (b *Bus) apiHandler(op apiOp) nats.MsgHandler {
	return func(m *nats.Msg) {
		if !b.apiPool.submit(func() { b.serveAPI(op.op, m) }) {
			b.respondAPI(m, op.op, errorReply(skyring.ErrClosed))
		}
	}
}

func errorReply(err error) apiReply {
	status, reason := skyring.Status(err)
	return apiReply{Status: status, Error: reason}
}

// serveAPI carries out one public API message and answers it if it has a
// reply subject.
func (b *Bus) serveAPI(op Op, m *nats.Msg) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("panic serving NATS API", "op", op, "panic", r)
			b.respondAPI(m, op, errorReply(fmt.Errorf("panic: %v", r)))
		}
	}()
	b.respondAPI(m, op, b.handleAPI(op, m.Data))
}

func (b *Bus) handleAPI(op Op, body []byte) apiReply {
	if len(body) > b.opts.MaxBodySize {
		return errorReply(skyring.ErrBodyTooLarge)
	}
	ctx := b.ctx
	switch op {
	case OpCreate:
		t, err := skyring.ParseTimer(body, b.parseParams(""))
		if err == nil {
			err = b.h.Create(ctx, t)
		}
		if err != nil {
			return errorReply(err)
		}
		return apiReply{ID: t.ID, Status: http.StatusCreated}
	case OpUpdate:
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
	case OpCancel:
		id, err := skyring.ParseID(body)
		if err == nil {
			err = b.h.Cancel(ctx, id)
		}
		if err != nil {
			return errorReply(err)
		}
		return apiReply{ID: id, Status: http.StatusAccepted}
	case OpGet:
		id, err := skyring.ParseID(body)
		if err != nil {
			return errorReply(err)
		}
		info, err := b.h.Get(ctx, id)
		if err != nil {
			return errorReply(err)
		}
		return apiReply{Status: http.StatusOK, Timer: &info}
	default:
		return errorReply(&skyring.StatusError{Status: http.StatusNotFound, Reason: "Not Found"})
	}
}

func (b *Bus) parseParams(id string) skyring.ParseParams {
	return skyring.ParseParams{Now: b.opts.Now(), MaxTimeout: b.opts.MaxTimeout, ID: id, IDField: true}
}

func (b *Bus) respondAPI(m *nats.Msg, op Op, rep apiReply) {
	if m.Reply == "" {
		if rep.Error != "" {
			b.log.Debug("fire-and-forget NATS API message failed", "op", op, "status", rep.Status, "reason", rep.Error)
		}
		return
	}
	data, err := json.Marshal(rep)
	if err != nil {
		b.log.Error("encoding NATS API reply", "op", op, "err", err)
		return
	}
	if err := m.Respond(data); err != nil {
		b.log.Debug("answering NATS API message", "op", op, "err", err)
	}
}
