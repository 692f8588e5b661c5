package main_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFaultSoak is the long random-fault run of the acceptance: 3
// nodes, 30,000 timers created over 60s (each due 1 to 10s after its
// create), and a random fault on a random node every few seconds for the
// whole run: kill -9 (restarted once the others dropped it, or at once),
// SIGTERM (restarted a moment later, or at once), SIGSTOP for 1 to 5s
// (past the member timeout or not). Judged as every fault scenario: 0
// lost, 0 early, every duplicate explained by a crash (counted).
//
// It takes about two minutes, so it runs only with SKYRING_SOAK=1;
// SKYRING_SOAK_SEED=<n> replays a run (the seed is logged).
func TestFaultSoak(t *testing.T) {
	if os.Getenv("SKYRING_SOAK") == "" {
		t.Skip("the long random-fault soak (about 2 minutes): SKYRING_SOAK=1 runs it")
	}
	seed := rand.Uint64()
	if s := os.Getenv("SKYRING_SOAK_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "SKYRING_SOAK_SEED")
	}
	const (
		nodes  = 3
		spread = 60 * time.Second
	)
	rng := rand.New(rand.NewPCG(seed, 1))
	var faults []faultStep
	for at := 3 * time.Second; at < spread; at += 3*time.Second + time.Duration(rng.IntN(3000))*time.Millisecond {
		i := rng.IntN(nodes)
		others := make([]int, 0, nodes-1)
		all := make([]int, 0, nodes)
		for j := range nodes {
			all = append(all, j)
			if j != i {
				others = append(others, j)
			}
		}
		var steps []faultStep
		switch rng.IntN(5) {
		case 0:
			steps = []faultStep{
				{At: at, Name: fmt.Sprintf("kill -9 n%d", i), Do: kill9(i)},
				{Name: "the others drop it", Do: awaitMembers(others...)},
				{Name: fmt.Sprintf("restart n%d", i), Do: restart(i)},
			}
		case 1:
			steps = []faultStep{{At: at, Name: fmt.Sprintf("kill -9 n%d and restart it at once", i), Do: killRestart(i)}}
		case 2:
			down := time.Second + time.Duration(rng.IntN(2000))*time.Millisecond
			steps = []faultStep{
				{At: at, Name: fmt.Sprintf("SIGTERM n%d", i), Do: sigterm(i)},
				{At: at + down, Name: fmt.Sprintf("restart n%d", i), Do: restart(i)},
			}
		case 3:
			steps = []faultStep{{At: at, Name: fmt.Sprintf("SIGTERM n%d and restart it at once", i), Do: stopRestart(i)}}
		case 4:
			d := time.Second + time.Duration(rng.IntN(4000))*time.Millisecond
			steps = []faultStep{{At: at, Name: fmt.Sprintf("SIGSTOP n%d for %v, then SIGCONT", i, d), Do: pause(i, d)}}
		}
		steps = append(steps, faultStep{Name: "all members", Do: awaitMembers(all...)})
		faults = append(faults, steps...)
	}
	start := time.Now()
	_, rep := runFaults(t, faultScenario{
		Nodes:   nodes,
		Timers:  30000,
		Spread:  spread,
		Delay:   [2]time.Duration{time.Second, 10 * time.Second},
		Workers: 96,
		Faults:  faults,
		Seed:    seed,
	})
	t.Logf("soak: %d faults in %v; %d acknowledged, %d lost, %d early, %d duplicates explained by a crash, %d not",
		len(faults), time.Since(start).Round(time.Second), rep.Acked, len(rep.Lost), len(rep.Early), len(rep.Explained), len(rep.Duplicates))
}
