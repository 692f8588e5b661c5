package ring_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/ring"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func ids(ms []ring.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestNewView(t *testing.T) {
	self := ring.Member{ID: "b", HTTPAddr: "127.0.0.1:3000", Timers: 4, Meta: map[string]string{"v": "1"}}
	v := ring.NewView(self, 0)
	require.Equal(t, uint64(1), v.Version())
	require.Equal(t, self, v.Self())
	require.Equal(t, []ring.Member{self}, v.Members())
	require.Equal(t, []string{"b"}, v.Ring().Members())
	require.Equal(t, ring.DefaultVNodes, v.Ring().VNodes())
	require.Equal(t, 16, ring.NewView(self, 16).Ring().VNodes())

	o, ok := v.Ring().Owner("any")
	require.True(t, ok)
	require.Equal(t, "b", o)

	got, ok := v.Get("b")
	require.True(t, ok)
	require.Equal(t, self, got)
	_, ok = v.LastSeen("b")
	require.False(t, ok, "self has no last-seen time")
}

// TestViewSeenIncarnations: a member whose Started grows restarted (the
// version grows, the ring does not change); a message of an older
// incarnation is ignored; an unknown Started (0) is a plain refresh.
func TestViewSeenIncarnations(t *testing.T) {
	tests := []struct {
		name        string
		first, next int64 // Started of the first and the next message
		want        ring.Change
		wantVersion uint64
		wantStarted int64
	}{
		{"same incarnation", 100, 100, ring.Unchanged, 2, 100},
		{"restart", 100, 200, ring.Restarted, 3, 200},
		{"late message of the previous incarnation", 200, 100, ring.Unchanged, 2, 200},
		{"sender that does not say", 100, 0, ring.Unchanged, 2, 100},
		{"first incarnation unknown", 0, 100, ring.Unchanged, 2, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := ring.NewView(ring.Member{ID: "self"}, 8)
			require.Equal(t, ring.Joined, v.Seen(ring.Member{ID: "p", Started: tt.first}, t0))
			require.Equal(t, tt.want, v.Seen(ring.Member{ID: "p", Started: tt.next, Timers: 3}, t0.Add(time.Second)))
			require.Equal(t, tt.wantVersion, v.Version())
			require.Equal(t, []string{"p", "self"}, v.Ring().Members())
			m, ok := v.Get("p")
			require.True(t, ok)
			require.Equal(t, tt.wantStarted, m.Started)
			seen, _ := v.LastSeen("p")
			if tt.want == ring.Unchanged && tt.next != 0 && tt.next < tt.first {
				require.Equal(t, t0, seen, "an old incarnation's message does not keep the member alive")
			} else {
				require.Equal(t, t0.Add(time.Second), seen)
			}
		})
	}
}

func TestViewSeen(t *testing.T) {
	v := ring.NewView(ring.Member{ID: "self"}, 8)

	require.Equal(t, ring.Joined, v.Seen(ring.Member{ID: "p1", HTTPAddr: "h1"}, t0))
	require.Equal(t, uint64(2), v.Version())
	require.Equal(t, []string{"p1", "self"}, v.Ring().Members())

	// A refresh updates the entry but is not a change of the ring.
	r := v.Ring()
	require.Equal(t, ring.Unchanged, v.Seen(ring.Member{ID: "p1", HTTPAddr: "h1b", Timers: 9}, t0.Add(time.Second)))
	require.Equal(t, uint64(2), v.Version())
	require.Same(t, r, v.Ring())
	m, ok := v.Get("p1")
	require.True(t, ok)
	require.Equal(t, ring.Member{ID: "p1", HTTPAddr: "h1b", Timers: 9}, m)
	seen, ok := v.LastSeen("p1")
	require.True(t, ok)
	require.Equal(t, t0.Add(time.Second), seen)

	// A delayed message does not move last-seen backwards.
	require.Equal(t, ring.Unchanged, v.Seen(ring.Member{ID: "p1", HTTPAddr: "h1b", Timers: 8}, t0))
	seen, _ = v.LastSeen("p1")
	require.Equal(t, t0.Add(time.Second), seen)

	require.Equal(t, ring.Joined, v.Seen(ring.Member{ID: "a0"}, t0))
	require.Equal(t, uint64(3), v.Version())
	require.Equal(t, []string{"a0", "p1", "self"}, ids(v.Members()))
	require.Equal(t, []string{"a0", "p1", "self"}, v.Ring().Members())

	// Self and empty ids are ignored.
	require.Equal(t, ring.Unchanged, v.Seen(ring.Member{ID: "self", HTTPAddr: "elsewhere", Timers: 100}, t0))
	require.Equal(t, ring.Unchanged, v.Seen(ring.Member{ID: ""}, t0))
	require.Equal(t, uint64(3), v.Version())
	require.Equal(t, ring.Member{ID: "self"}, v.Self())
	require.Len(t, v.Members(), 3)

	_, ok = v.Get("nobody")
	require.False(t, ok)
}

func TestViewLeave(t *testing.T) {
	v := ring.NewView(ring.Member{ID: "self"}, 8)
	v.Seen(ring.Member{ID: "p1"}, t0)
	v.Seen(ring.Member{ID: "p2"}, t0)
	require.Equal(t, uint64(3), v.Version())

	require.False(t, v.Leave("self"), "self cannot leave its own view")
	require.False(t, v.Leave("unknown"))
	require.Equal(t, uint64(3), v.Version())

	require.True(t, v.Leave("p1"))
	require.Equal(t, uint64(4), v.Version())
	require.Equal(t, []string{"p2", "self"}, v.Ring().Members())
	require.False(t, v.Leave("p1"), "already gone")

	// A member that left may join again.
	require.Equal(t, ring.Joined, v.Seen(ring.Member{ID: "p1"}, t0))
	require.Equal(t, uint64(5), v.Version())
}

func TestViewExpire(t *testing.T) {
	v := ring.NewView(ring.Member{ID: "self"}, 8)
	v.Seen(ring.Member{ID: "old"}, t0)
	v.Seen(ring.Member{ID: "older"}, t0.Add(-time.Second))
	v.Seen(ring.Member{ID: "fresh"}, t0.Add(4*time.Second))
	version := v.Version()

	// Exactly `after` old is not yet expired.
	require.Nil(t, v.Expire(t0.Add(4*time.Second), 5*time.Second))
	require.Equal(t, version, v.Version())
	require.Equal(t, []string{"older"}, v.Expire(t0.Add(5*time.Second), 5*time.Second))
	require.Equal(t, version+1, v.Version())

	// Several drops are one change; self never expires.
	require.Equal(t, []string{"fresh", "old"}, v.Expire(t0.Add(time.Hour), 5*time.Second))
	require.Equal(t, version+2, v.Version())
	require.Equal(t, []string{"self"}, ids(v.Members()))
	require.Nil(t, v.Expire(t0.Add(24*time.Hour), 0))
	require.Equal(t, []string{"self"}, v.Ring().Members())

	// A refresh postpones expiry.
	v.Seen(ring.Member{ID: "p"}, t0)
	v.Seen(ring.Member{ID: "p"}, t0.Add(10*time.Second))
	require.Nil(t, v.Expire(t0.Add(12*time.Second), 5*time.Second))
	require.Equal(t, []string{"p"}, v.Expire(t0.Add(16*time.Second), 5*time.Second))
}

func TestViewSetSelf(t *testing.T) {
	v := ring.NewView(ring.Member{ID: "self", HTTPAddr: "a:1"}, 8)
	version, r := v.Version(), v.Ring()
	v.SetSelf(ring.Member{ID: "ignored", HTTPAddr: "a:2", Timers: 12, Meta: map[string]string{"k": "v"}})
	require.Equal(t, ring.Member{ID: "self", HTTPAddr: "a:2", Timers: 12, Meta: map[string]string{"k": "v"}}, v.Self())
	require.Equal(t, version, v.Version())
	require.Same(t, r, v.Ring())
	require.Equal(t, []string{"self"}, v.Ring().Members())
}

// TestViewCopiesMeta: callers can neither change the view through a Meta map
// they passed in nor through one they got back.
func TestViewCopiesMeta(t *testing.T) {
	selfMeta := map[string]string{"k": "self"}
	v := ring.NewView(ring.Member{ID: "self", Meta: selfMeta}, 8)
	selfMeta["k"] = "changed"
	require.Equal(t, "self", v.Self().Meta["k"])
	v.Self().Meta["k"] = "changed"
	require.Equal(t, "self", v.Self().Meta["k"])

	peerMeta := map[string]string{"k": "peer"}
	v.Seen(ring.Member{ID: "p", Meta: peerMeta}, t0)
	peerMeta["k"] = "changed"
	for _, m := range v.Members() {
		m.Meta["k"] = "changed"
	}
	got, _ := v.Get("p")
	got.Meta["k"] = "changed"
	ms := v.Members()
	require.Equal(t, "peer", ms[0].Meta["k"])
	require.Equal(t, "self", ms[1].Meta["k"])
}

// TestViewConcurrent runs writers and lock-free readers together (meaningful
// under -race): readers always see a ring that has self and a version that
// never goes backwards.
func TestViewConcurrent(t *testing.T) {
	v := ring.NewView(ring.Member{ID: "self"}, 4)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("w%d-%d", w, i%10)
				now := t0.Add(time.Duration(i) * time.Second)
				v.Seen(ring.Member{ID: id, Timers: i}, now)
				if i%7 == 0 {
					v.Leave(id)
				}
				if i%13 == 0 {
					v.Expire(now, 3*time.Second)
				}
				v.SetSelf(ring.Member{Timers: i})
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			var last uint64
			for i := range 2000 {
				r := v.Ring()
				require.True(t, r.Has("self"))
				o, ok := r.Owner(fmt.Sprint(i))
				require.True(t, ok)
				require.True(t, r.Has(o))
				ver := v.Version()
				require.GreaterOrEqual(t, ver, last)
				last = ver
				require.Equal(t, "self", v.Self().ID)
				_ = v.Members()
			}
		})
	}
	wg.Wait()
	require.Equal(t, ids(v.Members()), v.Ring().Members(), "ring and member list agree once writers stop")
}

func BenchmarkViewRingOwner(b *testing.B) {
	v := ring.NewView(ring.Member{ID: "node-1"}, 0)
	for i := 2; i <= 5; i++ {
		v.Seen(ring.Member{ID: fmt.Sprintf("node-%d", i)}, t0)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = v.Ring().Owner("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
	}
}

func BenchmarkViewSeenRefresh(b *testing.B) {
	v := ring.NewView(ring.Member{ID: "node-1"}, 0)
	m := ring.Member{ID: "node-2", HTTPAddr: "127.0.0.1:3001"}
	v.Seen(m, t0)
	b.ReportAllocs()
	for b.Loop() {
		v.Seen(m, t0)
	}
}
