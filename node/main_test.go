package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every node a test starts must stop all its goroutines on Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// goleveldb's memory-pool drainer outlives DB.Close by up to a second.
		goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"),
	)
}
