package main_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fault scenarios of the normal suite: each a few hundred timers over
// a few seconds with one fault, judged by the runner's check
// (e2e_faults_runner_test.go): every acknowledged timer delivered, none
// early, duplicates only across a crash.

// skipShortFault skips a fault scenario under -short.
func skipShortFault(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process fault scenario")
	}
}

// smallLoad is the load of most scenarios: 300 timers created over 3s,
// each due 1 to 5s after its create, so that creates, deliveries and the
// fault overlap. Light enough for the race-built binary, so that the
// fault paths (recovery, hand-off, rejoin) run under the race detector
// too.
func smallLoad(sc faultScenario) faultScenario {
	sc.Race = true
	sc.Timers = 300
	sc.Spread = 3 * time.Second
	sc.Delay = [2]time.Duration{time.Second, 5 * time.Second}
	return sc
}

// kill -9 of one of three nodes while timers are created and delivered;
// restarted on its data directory once the others dropped it.
func TestFaultKill9(t *testing.T) {
	skipShortFault(t)
	runFaults(t, scenarioKill9())
}

func scenarioKill9() faultScenario {
	return smallLoad(faultScenario{
		Nodes: 3,
		Faults: []faultStep{
			{At: 1500 * time.Millisecond, Name: "kill -9 n2", Do: kill9(2)},
			{Name: "n0 and n1 drop n2", Do: awaitMembers(0, 1)},
			{Name: "restart n2", Do: restart(2)},
			{Name: "three members again", Do: awaitMembers(0, 1, 2)},
		},
	})
}

// SIGTERM of one of three nodes (it hands its timers to the others and
// exits 0), restarted a moment later (the others hand them back).
func TestFaultSIGTERM(t *testing.T) {
	skipShortFault(t)
	runFaults(t, scenarioSIGTERM())
}

func scenarioSIGTERM() faultScenario {
	return smallLoad(faultScenario{
		Nodes: 3,
		Faults: []faultStep{
			{At: 1500 * time.Millisecond, Name: "SIGTERM n2", Do: sigterm(2)},
			{At: 3 * time.Second, Name: "restart n2", Do: restart(2)},
			{Name: "three members again", Do: awaitMembers(0, 1, 2)},
		},
	})
}

// SIGSTOP of one of three nodes for longer than --member:timeout (the
// others drop it and take over its part of the ring), then SIGCONT: it
// comes back with the timers it held, and delivers those that came due
// meanwhile, late.
func TestFaultSIGSTOPPastMemberTimeout(t *testing.T) {
	skipShortFault(t)
	runFaults(t, scenarioSIGSTOPPastMemberTimeout())
}

func scenarioSIGSTOPPastMemberTimeout() faultScenario {
	return smallLoad(faultScenario{
		Nodes: 3,
		Faults: []faultStep{
			{At: 1500 * time.Millisecond, Name: "SIGSTOP n2 for 4.5s (member timeout 3s), then SIGCONT", Do: pause(2, 4500*time.Millisecond)},
			{Name: "three members again", Do: awaitMembers(0, 1, 2)},
		},
	})
}

// SIGSTOP of one of three nodes for longer than the relay timeout (5s)
// and the member timeout, then kill -9 just after SIGCONT, and a restart
// once the others dropped it. Creates relayed to it while it was stopped
// answer 504 and are sent again (same id) to the new owner, which stores
// them (201); the stopped node may still carry the stale ones out in the
// moment between SIGCONT and the kill. Each timer must still arrive once:
// its first delivery comes after the crash, so no repeat is explained by
// it. Found by the soak: before the acknowledged, idempotent hand-off the
// restarted owner delivered its stale copy, then took the new owner's copy
// as a new timer and delivered it again (8 to 19 duplicates a run).
func TestFaultSIGSTOPPastRelayTimeoutThenKill(t *testing.T) {
	skipShortFault(t)
	_, rep := runFaults(t, scenarioSIGSTOPPastRelayTimeoutThenKill())
	if rep.Retried == 0 {
		t.Errorf("no create was sent again after a 504: the scenario proved nothing")
	}
}

func scenarioSIGSTOPPastRelayTimeoutThenKill() faultScenario {
	return faultScenario{
		Nodes:  3,
		Timers: 300,
		Spread: 2500 * time.Millisecond,
		// Long enough for a create that got 504 after the relay timeout to
		// be sent again.
		Delay: [2]time.Duration{7500 * time.Millisecond, 10 * time.Second},
		Faults: []faultStep{
			{At: 1500 * time.Millisecond, Name: "SIGSTOP n2 for 6.5s, then SIGCONT", Do: pause(2, 6500*time.Millisecond)},
			{At: 8100 * time.Millisecond, Name: "kill -9 n2 (100ms after SIGCONT)", Do: kill9(2)},
			{Name: "n0 and n1 drop n2", Do: awaitMembers(0, 1)},
			{Name: "restart n2", Do: restart(2)},
			{Name: "three members again", Do: awaitMembers(0, 1, 2)},
		},
	}
}

// kill -9 of one of three nodes, restarted at once: back before the others
// drop it (they see its new start time: a restart).
func TestFaultKill9RestartWithinMemberTimeout(t *testing.T) {
	skipShortFault(t)
	runFaults(t, scenarioKill9RestartWithinMemberTimeout())
}

func scenarioKill9RestartWithinMemberTimeout() faultScenario {
	return smallLoad(faultScenario{
		Nodes: 3,
		Faults: []faultStep{
			{At: 1500 * time.Millisecond, Name: "kill -9 n2 and restart it at once", Do: killRestart(2)},
			{Name: "three members", Do: awaitMembers(0, 1, 2)},
		},
	})
}

// SIGTERM of one of three nodes, restarted at once: it hands its timers
// off as it leaves and gets them back as it rejoins, within the member
// timeout.
func TestFaultSIGTERMRestartWithinMemberTimeout(t *testing.T) {
	skipShortFault(t)
	runFaults(t, scenarioSIGTERMRestartWithinMemberTimeout())
}

func scenarioSIGTERMRestartWithinMemberTimeout() faultScenario {
	return smallLoad(faultScenario{
		Nodes: 3,
		Faults: []faultStep{
			{At: 1500 * time.Millisecond, Name: "SIGTERM n2 and restart it at once", Do: stopRestart(2)},
			{Name: "three members", Do: awaitMembers(0, 1, 2)},
		},
	})
}

// Two of four nodes get SIGTERM at the same moment. Both must exit 0
// within the shutdown deadline having handed every timer they held to the
// two that stay (not to each other): GET /cluster on the two shows every
// pending timer, and every timer is delivered.
func TestFaultTwoOfFourStopTogether(t *testing.T) {
	skipShortFault(t)
	var before int
	var held map[string]int
	runFaults(t, faultScenario{
		Nodes:  4,
		Timers: 400,
		Spread: time.Second,
		// Due well after the stop: every timer is still pending when the
		// counts are read.
		Delay: [2]time.Duration{12 * time.Second, 14 * time.Second},
		Faults: []faultStep{
			{At: 1500 * time.Millisecond, Name: "every create answered; count", Do: func(r *faultRun) {
				r.waitLoad()
				before, held = clusterTimerSum(r.t, r.all())
				r.t.Logf("before the stop: %d timers pending %v", before, held)
			}},
			{Name: "SIGTERM n2 and n3 together", Do: sigtermTogether(2, 3)},
			{Name: "n0 and n1 hold every timer", Do: func(r *faultRun) {
				awaitMembers(0, 1)(r)
				delivered := r.s.Count(r.path)
				after, counts := clusterTimerSum(r.t, r.all()[:2])
				if r.s.Count(r.path) != delivered || delivered > 0 {
					r.t.Logf("%d timers were delivered around the count: the count is not judged (%d held by n0 and n1: %v)", r.s.Count(r.path), after, counts)
					return
				}
				if after != before {
					r.t.Errorf("n0 and n1 hold %d timers %v after n2 and n3 stopped together; the four held %d %v before", after, counts, before, held)
				} else {
					r.t.Logf("n0 and n1 hold all %d timers %v", after, counts)
				}
				for _, n := range r.all()[2:] {
					if strings.Contains(n.Output(), "timers kept on disk after leaving") {
						r.t.Errorf("%s kept timers on disk after leaving", n.Name)
					}
					for _, line := range strings.Split(n.Output(), "\n") {
						if strings.Contains(line, "hand") {
							r.t.Logf("%s: %s", n.Name, strings.TrimSpace(line))
						}
					}
				}
			}},
		},
	})
}

// A slow disk on the receiver of a hand-off: a node whose every write
// takes 3s joins a cluster whose hand-off timeout is 2s (in production:
// 11s against the default 10s), so each hand-off to it outlasts the
// sender's timeout while the receiver still stores what it was sent. No
// timer may be delivered twice (there is no crash), none lost.
func TestFaultSlowDiskHandoffReceiver(t *testing.T) {
	skipShortFault(t)
	// The joiner's data directory gets its node id in a life of its own
	// (alone, at full speed), so that its start waits on one slow write
	// (the start count), not two.
	dir := t.TempDir()
	prep := startNode(t, "--storage:path", dir, "-s", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	prep.Stop()
	fast := []string{"--debug:handoff-timeout", "2s"}
	r, _ := runFaults(t, faultScenario{
		Nodes: 3, Slots: 4,
		NodeArgs: map[int][]string{0: fast, 1: fast, 2: fast},
		Timers:   300,
		Spread:   time.Second,
		// Due once the first hand-off to the joiner (ready about 3s after
		// its start, at about 4s) timed out (about 6s) and its slow write
		// went through (about 7s).
		Delay: [2]time.Duration{8 * time.Second, 11 * time.Second},
		Entry: []int{0, 1, 2}, // not through the slow node: each create there takes 3s
		Faults: []faultStep{
			{At: time.Second, Name: "n3 joins with --debug:slow-writes 3s", Do: func(r *faultRun) {
				n := r.startNode(append([]string{"--storage:path", dir, "--debug:slow-writes", "3s"}, fast...)...)
				r.event(n, "joined with slow writes", false)
			}},
			{Name: "four members", Do: awaitMembers(0, 1, 2, 3)},
			{Name: "creates done", Do: awaitLoad},
			// While the hand-offs to the slow node time out and are sent
			// again: no 404 for a pending timer, no delivery after a 202.
			{Name: "probe GET and DELETE during the transfer", Do: probeTransfer(3*time.Second, 10)},
		},
	})
	// The premise: a hand-off to the slow node outlasted its timeout.
	timedOut := 0
	for _, n := range r.all()[:3] {
		for _, line := range strings.Split(n.Output(), "\n") {
			if strings.Contains(line, "hand-off") && strings.Contains(line, "deadline exceeded") {
				timedOut++
			}
		}
	}
	if timedOut == 0 {
		t.Errorf("no hand-off to the slow node timed out: the scenario proved nothing")
	}
	t.Logf("%d hand-off messages to the slow node timed out", timedOut)
}

// Each node drops a fifth of its replies to relayed commands, having
// carried them out: a relayed create then answers 504, and is sent again
// with the same id (409: it was stored). Every acknowledged timer is
// delivered once.
func TestFaultDroppedRelayReplies(t *testing.T) {
	skipShortFault(t)
	runFaults(t, scenarioDroppedRelayReplies())
}

func scenarioDroppedRelayReplies() faultScenario {
	drop := []string{"--debug:drop-relay-replies", "0.2"}
	return faultScenario{
		Nodes:    3,
		NodeArgs: map[int][]string{0: drop, 1: drop, 2: drop},
		Timers:   300,
		Spread:   3 * time.Second,
		// A dropped reply costs the relay timeout (5s) before the 504; the
		// create is sent again only while its timer is 2s from due.
		Delay:   [2]time.Duration{9 * time.Second, 12 * time.Second},
		Workers: 64,
	}
}

// Clock skew: one of three nodes reads 30s ahead (or behind) of the
// others. A relative timer ("timeout") must never arrive before its
// timeout has passed by the clock of the node that accepted it, whichever
// node owns it. Before the skew-proof relative timers (the owner counts a
// relayed timeout from when it stores it) a skewed owner fired the others'
// timers up to 30s early, and those it accepted for the others 30s late.
func TestFaultClockSkew(t *testing.T) {
	skipShortFault(t)
	for _, tc := range []struct {
		name   string
		offset string
	}{{"ahead", "30s"}, {"behind", "-30s"}} {
		t.Run(tc.name, func(t *testing.T) {
			runFaults(t, scenarioClockSkew(tc.offset))
		})
	}
}

// scenarioClockSkew: node 1 reads offset (e.g. "30s", "-30s") off the
// others' clocks.
func scenarioClockSkew(offset string) faultScenario {
	return faultScenario{
		Nodes:    3,
		NodeArgs: map[int][]string{1: {"--debug:clock-offset", offset}},
		Timers:   300,
		Spread:   2 * time.Second,
		Delay:    [2]time.Duration{2 * time.Second, 5 * time.Second},
		// Were timers fired 30s late (accepted by a node behind
		// the owner), they would arrive before the check: late,
		// not lost.
		Slack: 40 * time.Second,
	}
}
