package skyring_test

import (
	"fmt"
	"time"

	"github.com/skyring/skyring"
)

func ExampleParseTimer() {
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC) // when the node accepts the request
	body := []byte(`{
		"timeout": "1500.9",
		"data": { "order": 42 },
		"callback": { "transport": "http", "method": "post", "uri": "http://127.0.0.1:8080/due" }
	}`)
	t, err := skyring.ParseTimer(body, skyring.ParseParams{Now: now, ID: "order-42"})
	if err != nil {
		panic(err)
	}
	info := t.Info("node-a")
	fmt.Println(info.ID, info.Timeout, t.DueTime().UTC().Format(time.RFC3339Nano))
	fmt.Println(string(t.Data))

	// A rejection names the field and carries the reason sent to the client.
	_, err = skyring.ParseTimer([]byte(`{"timeout": 0, "callback": {}}`), skyring.ParseParams{Now: now})
	fmt.Println(err.(*skyring.ValidationError).Field)
	fmt.Println(skyring.Status(err))
	// Output:
	// order-42 1500 2024-03-01T12:00:01.5Z
	// {"order":42}
	// timeout
	// 400 timeout must be between 1 and 2147483647 milliseconds
}

func ExampleErrorFromStatus() {
	// What one node answers (over NATS, say) ...
	status, reason := skyring.Status(fmt.Errorf("cancel t1: %w", skyring.ErrTimerNotFound))
	fmt.Println(status, reason)
	// ... is the same sentinel on the other side.
	err := skyring.ErrorFromStatus(status, reason)
	fmt.Println(err == skyring.ErrTimerNotFound)
	// Output:
	// 404 Timer not found
	// true
}

func ExampleErrorFromCode() {
	// What one node answers to a relayed command ...
	err := fmt.Errorf("cancel t1: %w", skyring.ErrClosed)
	code := skyring.CodeOf(err)
	status, reason := skyring.Status(err)
	fmt.Println(code, status, reason)
	// ... is the same sentinel on the other side, chosen by the code alone.
	back := skyring.ErrorFromCode(code, status, reason)
	fmt.Println(back == skyring.ErrClosed)
	// Output:
	// closed 503 Node is shutting down
	// true
}
