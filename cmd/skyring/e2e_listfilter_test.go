package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// listIDs pages through GET /timer?query on p, limit at a time, and
// returns the ids listed, in order.
func (p *proc) listIDs(t testing.TB, query string, limit int) []string {
	t.Helper()
	ids := []string{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "the listing does not end")
		path := fmt.Sprintf("/timer?%s&limit=%d", query, limit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := p.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, r.Status, "GET %s: %s", path, r)
		var page struct {
			Timers []struct {
				ID string `json:"id"`
			} `json:"timers"`
			Cursor string `json:"cursor"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &page), r.String())
		require.LessOrEqual(t, len(page.Timers), limit)
		for _, tm := range page.Timers {
			ids = append(ids, tm.ID)
		}
		if page.Cursor == "" {
			return ids
		}
		cursor = page.Cursor
	}
}

// TestClusterListFiltersAndBulkCancel: on a 2-node cluster of real
// processes, GET /timer through either node keeps exactly what each filter
// (id prefix, callback host and host:port, due range in Unix ms and RFC
// 3339, state) names, with paging; DELETE /timer?prefix= through one node
// cancels the matching timers on both nodes and answers their count; the
// cancelled ones are never delivered (a barrier timer due after them
// fires first), the others are.
func TestClusterListFiltersAndBulkCancel(t *testing.T) {
	t.Parallel()
	s1, s2 := newSink(t), newSink(t)
	c := newEmbeddedCluster(t, skyringBin, 2)
	nodes := c.startN(2)
	host1 := strings.TrimPrefix(s1.srv.URL, "http://")
	attempt := 0
	withLead(t, 5*time.Second, func(lead time.Duration) time.Duration {
		attempt++
		start := time.Now()
		p := fmt.Sprintf("lf%d-", attempt)
		at := atIn(lead)
		barrierAt := at + 1000
		create := func(n *cnode, id string, s *sink, path string, due int64) bool {
			r := n.do(t, http.MethodPost, "/timer", with(body(s, path), "timeout", remove, "at", due), "x-timer-id", id)
			if slowAnswer(r, due) {
				return false
			}
			require.Equal(t, http.StatusCreated, r.Status, "POST /timer %s: %s", id, r)
			return true
		}
		putAway := func() time.Duration {
			nodes[0].do(t, http.MethodDelete, "/timer?prefix="+p, nil)
			return 2*time.Since(start) + time.Second
		}
		// Drop timers until both nodes own some; as many keep timers.
		var drop, keep, dropPaths, keepPaths []string
		owners := map[string]bool{}
		for i := 0; len(owners) < 2 || i < 6; i++ {
			require.Less(t, i, 100, "the timers did not land on both nodes")
			id, path := fmt.Sprintf("%sdrop-%02d", p, i), s1.Path("drop")
			if !create(nodes[i%2], id, s1, path, at) {
				return putAway()
			}
			drop, dropPaths = append(drop, id), append(dropPaths, path)
			owners[nodes[0].getTimer(t, id).Node] = true
			id, path = fmt.Sprintf("%skeep-%02d", p, i), s2.Path("keep")
			if !create(nodes[(i+1)%2], id, s2, path, at) {
				return putAway()
			}
			keep, keepPaths = append(keep, id), append(keepPaths, path)
		}
		barrier, barrierPath := p+"zbarrier", s2.Path("barrier")
		if !create(nodes[0], barrier, s2, barrierPath, barrierAt) {
			return putAway()
		}
		all := slices.Sorted(slices.Values(slices.Concat(drop, keep, []string{barrier})))
		atRFC := time.UnixMilli(at + 1).UTC().Format(time.RFC3339Nano)
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"prefix=" + p, all},
			{"prefix=" + p + "drop-", drop},
			{"prefix=" + p + "&host=" + host1, drop},
			{"prefix=" + p + "&host=127.0.0.1", all},
			{"prefix=" + p + "&host=127.0.0.2", nil},
			{fmt.Sprintf("prefix=%s&due_after=%d&due_before=%d", p, at, at+1), slices.Concat(drop, keep)},
			{fmt.Sprintf("prefix=%s&due_after=%d", p, at+1), []string{barrier}},
			{"prefix=" + p + "&due_before=" + url.QueryEscape(atRFC), slices.Concat(drop, keep)},
			{"prefix=" + p + "&state=pending", all},
			{"prefix=" + p + "&state=failed", nil},
		} {
			want := slices.Sorted(slices.Values(tc.want))
			if want == nil {
				want = []string{}
			}
			for i, n := range nodes {
				for _, limit := range []int{3, 100} {
					require.Equal(t, want, n.listIDs(t, tc.query, limit), "GET /timer?%s through node %d, limit %d", tc.query, i+1, limit)
				}
			}
		}
		requireError(t, nodes[1].do(t, http.MethodDelete, "/timer", nil), http.StatusBadRequest, "a bare DELETE /timer")
		requireError(t, nodes[1].do(t, http.MethodDelete, "/timer?due_after=soon", nil), http.StatusBadRequest, "a bad filter")

		r := nodes[1].do(t, http.MethodDelete, "/timer?prefix="+p+"drop-", nil)
		if time.Now().UnixMilli() >= at-200 {
			// Some may have fired before the cancel reached them.
			return putAway()
		}
		require.Equal(t, http.StatusOK, r.Status, "DELETE /timer?prefix=: %s", r)
		require.JSONEq(t, fmt.Sprintf(`{"cancelled":%d}`, len(drop)), string(r.Body))
		require.Equal(t, drop, nodes[0].listIDs(t, "state=cancelled&prefix="+p, 100))

		s2.waitPath(t, barrierPath, lead+30*time.Second)
		for i, path := range keepPaths {
			s2.waitPath(t, path, 10*time.Second)
			require.Equal(t, 1, s2.Count(path), "keep timer %s", keep[i])
		}
		for i, path := range dropPaths {
			require.Zero(t, s1.Count(path), "cancelled timer %s was delivered", drop[i])
		}
		require.Equal(t, drop, nodes[1].listIDs(t, "state=cancelled&prefix="+p, 100), "still cancelled after their due time")
		return 0
	})
}
