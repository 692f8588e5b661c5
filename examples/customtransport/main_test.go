package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer collects the process's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The example binary, built and run: a timer naming the custom transport
// reaches it, and closing the node calls its Shutdown.
func TestCustomTransportBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "skyring-file")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	cmd := exec.Command(bin, "run", "-p", "-1", "--channel:port", "-1", "--nats:port", "-1",
		"--storage:path", filepath.Join(dir, "data"), "-t", "http", "-t", "file")
	var stderr syncBuffer
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(&stderr, pw)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The ready line gives the HTTP address.
	ready := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="skyring ready".* http=(\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready line; stderr:\n%s", stderr.String())
	}
	addr = strings.Replace(addr, "[::]", "127.0.0.1", 1)

	out := filepath.Join(dir, "fired.log")
	body := `{"timeout":50,"data":"hello file","callback":{"transport":"file","method":"append","uri":"` + out + `"}}`
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/timer", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-timer-id", "custom-1")
	// Every request and wait has a bound: a node that stops answering
	// fails the test instead of hanging it.
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, resp.Header.Get("x-skyring-reason"))

	// An unknown transport is still a 400 that names the known ones.
	resp, err = client.Post("http://"+addr+"/timer", "application/json",
		strings.NewReader(`{"timeout":50,"callback":{"transport":"pigeon","method":"x","uri":"y"}}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, resp.Header.Get("x-skyring-reason"), "file")

	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == "custom-1 hello file\n"
	}, 20*time.Second, 10*time.Millisecond, "the custom transport never wrote the timer")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("no exit within 30s of SIGTERM; stderr:\n%s", stderr.String())
	}
	require.Contains(t, stderr.String(), "file transport shut down")
}
