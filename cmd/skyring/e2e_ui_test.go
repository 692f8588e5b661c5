package main_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium finds a Chromium or Chrome binary. CI installs Debian's chromium
// (.ci/run), so there a missing browser fails the test; elsewhere the test
// is skipped.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SKYRING_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium in PATH: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium in PATH (apt-get install chromium); CI runs this test")
	return ""
}

// TestDashboard loads /ui in a real headless Chromium against a real node
// that wants an API token: the page asks for the token, shows the ring, a
// failed timer with its retry button, and its numbers change as timers
// fire; clicking retry delivers the failed timer, which leaves the list.
func TestDashboard(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	s := newSink(t)
	var healed atomic.Bool
	var retried atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healed.Load() {
			w.WriteHeader(http.StatusBadRequest) // final: no retry
			return
		}
		retried.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(flaky.Close)

	const token = "dashboard-token-123"
	p := startNode(t, "--http:token", token)
	auth := "Bearer " + token
	cb := map[string]any{"transport": "http", "method": "post", "uri": flaky.URL + "/dead"}
	r := p.do(t, http.MethodPost, "/timer", map[string]any{"timeout": 1, "data": "dead", "callback": cb}, "x-timer-id", "ui-dead", "Authorization", auth)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	deadline := time.Now().Add(deliverWait)
	for {
		g := p.do(t, http.MethodGet, timerPath("ui-dead"), nil, "Authorization", auth)
		if g.Status == http.StatusOK && strings.Contains(string(g.Body), `"state":"failed"`) {
			break
		}
		require.True(t, time.Now().Before(deadline), "ui-dead never failed: %s", g)
		time.Sleep(20 * time.Millisecond)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelC)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)

	// The page asks for the token, then polls the node.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(p.URL+"/ui"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login-button")),
		chromedp.WaitVisible(chromedp.CSS(`#members tr[data-id="`+p.Node+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#failed tr[data-id="ui-dead"] button.retry`)),
	))
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err)
		return strings.TrimSpace(v)
	}
	// waitText polls the page until sel's text satisfies ok.
	waitText := func(sel, what string, ok func(string) bool) string {
		t.Helper()
		for {
			v := text(sel)
			if ok(v) {
				return v
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %s stayed %q", what, sel, v)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	before := waitText("#deliveries-total", "metrics shown", func(v string) bool { return v != "–" })
	t.Logf("dashboard before: deliveries %s, pending %s", before, text("#pending-total"))

	// Timers fire: the numbers move.
	const n = 5
	for i := range n {
		id := fmt.Sprintf("ui-%d", i)
		r := p.do(t, http.MethodPost, "/timer", with(body(s, "/ui/"+id), "timeout", 1500), "x-timer-id", id, "Authorization", auth)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
	}
	waitText("#pending-total", "pending count shows the new timers", func(v string) bool {
		got, err := strconv.Atoi(v)
		return err == nil && got >= n
	})
	for i := range n {
		s.waitPath(t, fmt.Sprintf("/ui/ui-%d", i), deliverWait)
	}
	after := waitText("#deliveries-total", "deliveries counted", func(v string) bool { return v != before && v != "–" })
	t.Logf("dashboard after: deliveries %s", after)
	waitText("#lateness", "lateness histogram drawn", func(v string) bool { return strings.Contains(v, "ms") })

	// The README's screenshot: timers delivered, one failed.
	if dir := os.Getenv("SKYRING_UI_SCREENSHOT"); dir != "" {
		require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644))
	}

	// Retry by clicking: the receiver now answers 200.
	healed.Store(true)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#failed tr[data-id="ui-dead"] button.retry`))))
	deadline = time.Now().Add(deliverWait)
	for retried.Load() == 0 {
		require.True(t, time.Now().Before(deadline), "the clicked retry never reached the receiver")
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitNotPresent(chromedp.CSS(`#failed tr[data-id="ui-dead"]`))))
	g := p.do(t, http.MethodGet, timerPath("ui-dead"), nil, "Authorization", auth)
	require.Contains(t, string(g.Body), `"state":"delivered"`)

}
