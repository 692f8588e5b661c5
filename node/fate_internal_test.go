package node

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

func TestMergeList(t *testing.T) {
	t.Parallel()
	tm := func(ids ...string) []*skyring.Timer {
		var out []*skyring.Timer
		for _, id := range ids {
			out = append(out, &skyring.Timer{ID: id})
		}
		return out
	}
	ids := func(p skyring.ListPage) []string {
		var out []string
		for _, i := range p.Timers {
			out = append(out, i.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		parts      []listPart
		limit      int
		want       []string
		wantCursor string // decoded
	}{
		{"all done, fewer than limit", []listPart{{node: "a", timers: tm("b", "d")}, {node: "b", timers: tm("a", "c")}}, 10,
			[]string{"a", "b", "c", "d"}, ""},
		{"all done, more than limit", []listPart{{node: "a", timers: tm("b", "d")}, {node: "b", timers: tm("a", "c")}}, 3,
			[]string{"a", "b", "c"}, "c"},
		{"exactly the limit: a cursor, the next page may be empty", []listPart{{node: "a", timers: tm("a", "b")}}, 2,
			[]string{"a", "b"}, "b"},
		// b stopped at "c" (full page): a's "d" and "e" wait for the next page.
		{"a member with more bounds the page", []listPart{
			{node: "a", timers: tm("d", "e")},
			{node: "b", timers: tm("a", "c"), scanned: "c", more: true},
		}, 2, []string{"a", "c"}, "c"},
		{"a member that scanned without finding bounds an empty page", []listPart{
			{node: "a", timers: tm("x")},
			{node: "b", scanned: "m", more: true},
		}, 5, []string{}, "m"},
		{"the smallest bound wins", []listPart{
			{node: "a", timers: tm("b", "k"), scanned: "k", more: true},
			{node: "b", timers: tm("c", "f"), scanned: "f", more: true},
			{node: "c", timers: tm("a", "z")},
		}, 10, []string{"a", "b", "c", "f"}, "f"},
		{"empty cluster", []listPart{{node: "a"}, {node: "b"}}, 10, []string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := mergeList(tc.parts, tc.limit)
			require.NotNil(t, page.Timers)
			got := ids(page)
			if got == nil {
				got = []string{}
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, skyring.EncodeCursor(tc.wantCursor), page.Cursor)
		})
	}
	page := mergeList([]listPart{{node: "n1", timers: tm("a")}}, 5)
	require.Equal(t, "n1", page.Timers[0].Node, "each timer names the node that holds it")
}
