package transports_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
)

// Shout is a custom transport: it "delivers" a timer by printing its data in
// upper case. A real one would call a queue, a chat service, a database...
type Shout struct{}

func (Shout) Name() string { return "shout" }

func (Shout) Execute(ctx context.Context, t *skyring.Timer) error {
	body, _ := t.Body()
	fmt.Printf("%s %s: %s\n", strings.ToUpper(t.Callback.Method), t.Callback.URI, strings.ToUpper(string(body)))
	return nil
}

func ExampleRegistry() {
	reg, err := transports.NewRegistry(Shout{})
	if err != nil {
		panic(err)
	}

	// Registering a second transport under the same name is an error.
	err = reg.Register(Shout{})
	fmt.Println(errors.Is(err, transports.ErrDuplicateTransport), err)

	// A fired timer names its transport in callback.transport.
	timer := &skyring.Timer{
		ID:       "t1",
		Data:     []byte(`"wake up"`),
		Callback: skyring.Callback{Transport: "shout", Method: "say", URI: "room-1"},
	}
	tr, err := reg.Lookup(timer.Callback.Transport)
	if err != nil {
		panic(err)
	}
	if err := tr.Execute(context.Background(), timer); err != nil {
		panic(err)
	}

	// An unknown name is a 400 for the client, listing the known ones.
	_, err = reg.Lookup("smtp")
	status, reason := skyring.Status(err)
	fmt.Println(status, reason)

	fmt.Println(reg.Shutdown(context.Background()))
	// Output:
	// true transports: duplicate transport name: "shout"
	// SAY room-1: WAKE UP
	// 400 Unknown transport "smtp"; known: shout
	// <nil>
}

// A custom binary adds its transports to the catalog the CLI builds from,
// then the --transport flags pick which ones a node enables.
func ExampleCatalog() {
	catalog := transports.NewCatalog()
	if err := catalog.Add("shout", func(transports.Deps) (transports.Transport, error) { return Shout{}, nil }); err != nil {
		panic(err)
	}
	fmt.Println(catalog.Names())

	reg, err := catalog.Build([]string{"shout"}, transports.Deps{})
	if err != nil {
		panic(err)
	}
	fmt.Println(reg.Names())

	_, err = catalog.Build([]string{"shout", "pager"}, transports.Deps{})
	fmt.Println(errors.Is(err, transports.ErrUnknownTransportName), err)
	// Output:
	// [shout]
	// [shout]
	// true transports: unknown transport name "pager"; known: shout
}

// Pager is a custom transport that checks its callbacks when a timer is
// created: it implements transports.Validator.
type Pager struct{}

func (Pager) Name() string { return "pager" }

func (Pager) Execute(ctx context.Context, t *skyring.Timer) error { return nil }

func (Pager) Validate(cb skyring.Callback) error {
	if cb.Method != "page" {
		return &skyring.ValidationError{Field: "callback.method", Reason: fmt.Sprintf("callback.method %q: the pager transport only pages", cb.Method)}
	}
	return nil
}

// A node calls Check before it accepts a create or update: the transport
// must be registered and, if it implements Validator, accept the callback.
// Transports without Validate (Shout here) accept any callback.
func ExampleRegistry_Check() {
	reg, err := transports.NewRegistry(Shout{}, Pager{})
	if err != nil {
		panic(err)
	}
	for _, cb := range []skyring.Callback{
		{Transport: "pager", Method: "page", URI: "oncall"},
		{Transport: "pager", Method: "email", URI: "oncall"},
		{Transport: "shout", Method: "anything", URI: "at all"},
		{Transport: "smtp", Method: "send", URI: "a@b.c"},
	} {
		if err := reg.Check(cb); err != nil {
			status, reason := skyring.Status(err)
			fmt.Println(status, reason)
			continue
		}
		fmt.Println("accepted")
	}
	// Output:
	// accepted
	// 400 callback.method "email": the pager transport only pages
	// accepted
	// 400 Unknown transport "smtp"; known: pager, shout
}
