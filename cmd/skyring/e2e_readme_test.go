package main_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readmeExample is one curl command of README.md with what its comment
// says it answers.
type readmeExample struct {
	line   int      // 1-based line of README.md where the command starts
	setup  []string // shell assignments before it in its block (AT=$(date …))
	cmd    string   // the command as written, continuation lines included
	status int      // the status its comment names; 0: any 2xx
	body   string   // an error body its comment shows, {"message":"…"}
}

// statusComment finds the status a comment names: "# 201", "# HTTP/1.1 201
// Created", "# 202; a second DELETE is 404" (the first is meant).
var statusComment = regexp.MustCompile(`^#\s*(?:HTTP/[0-9.]+\s+)?([1-5][0-9][0-9])\b`)

// errorBodyComment finds an error body a comment shows.
var errorBodyComment = regexp.MustCompile(`\{"message":"[^"]*"\}`)

// readmeExamples extracts the curl commands of the sh blocks of README.md.
func readmeExamples(t *testing.T, readme string) []readmeExample {
	t.Helper()
	var (
		out     []readmeExample
		inBlock bool
		setup   []string
	)
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "```"):
			inBlock = !inBlock && strings.TrimSpace(strings.TrimPrefix(l, "```")) == "sh"
			setup = nil
			continue
		case !inBlock:
			continue
		case regexp.MustCompile(`^[A-Z_]+=`).MatchString(l):
			setup = append(setup, l)
			continue
		case !strings.HasPrefix(l, "curl "):
			continue
		}
		ex := readmeExample{line: i + 1, setup: setup}
		cmd := []string{l}
		// Continuation lines, and lines inside an open single quote.
		for (strings.HasSuffix(strings.TrimSpace(stripComment(cmd[len(cmd)-1])), "\\") || strings.Count(strings.Join(cmd, "\n"), "'")%2 == 1) && i+1 < len(lines) {
			i++
			cmd = append(cmd, lines[i])
		}
		ex.cmd = strings.Join(cmd, "\n")
		// The status: an inline comment on the last line, else the comment
		// lines right below.
		comments := []string{inlineComment(cmd[len(cmd)-1])}
		for j := i + 1; j < len(lines) && strings.HasPrefix(lines[j], "#"); j++ {
			comments = append(comments, lines[j])
		}
		for _, c := range comments {
			if m := statusComment.FindStringSubmatch(c); m != nil {
				ex.status, _ = strconv.Atoi(m[1])
				ex.body = errorBodyComment.FindString(c)
				break
			}
		}
		out = append(out, ex)
	}
	return out
}

// inlineComment is the "# …" part of a shell line outside quotes, or "".
func inlineComment(l string) string {
	if i := commentStart(l); i >= 0 {
		return l[i:]
	}
	return ""
}

func stripComment(l string) string {
	if i := commentStart(l); i >= 0 {
		return l[:i]
	}
	return l
}

// commentStart is the index of a "#" that starts a shell comment (after a
// space, outside single quotes), or -1.
func commentStart(l string) int {
	quoted := false
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\'':
			quoted = !quoted
		case l[i] == '#' && !quoted && (i == 0 || l[i-1] == ' '):
			return i
		}
	}
	return -1
}

// TestREADMECurlExamples runs every curl example of README.md, in order,
// against a real node (localhost:3000 rewritten to it, the callback
// receiver localhost:9000 to a sink), and checks that each answers what
// its comment says (any 2xx when the comment names no status).
func TestREADMECurlExamples(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl on this machine")
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	examples := readmeExamples(t, string(readme))
	require.GreaterOrEqual(t, len(examples), 10, "the README's curl examples")

	s := newSink(t)
	p := startNode(t)
	sinkBase := strings.TrimSuffix(s.URL(""), "/")
	for _, ex := range examples {
		script := strings.Join(append(append([]string{"set -e"}, ex.setup...), ex.cmd), "\n")
		script = strings.ReplaceAll(script, "http://localhost:3000", p.URL)
		script = strings.ReplaceAll(script, "http://localhost:9000", sinkBase)
		// Ask curl for the status too, right after the command's name (a
		// comment at the end of the line would swallow a suffix).
		script = strings.Replace(script, "curl ", `curl -w '\n__STATUS__ %{http_code}\n' `, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "bash", "-c", script).CombinedOutput()
		cancel()
		require.NoError(t, err, "README.md:%d: %s\n%s", ex.line, ex.cmd, out)
		m := regexp.MustCompile(`__STATUS__ (\d{3})`).FindSubmatch(out)
		require.NotNil(t, m, "README.md:%d: no status in %q", ex.line, out)
		got, _ := strconv.Atoi(string(m[1]))
		if ex.status != 0 {
			require.Equal(t, ex.status, got, "README.md:%d: %s\n%s", ex.line, ex.cmd, out)
		} else {
			require.True(t, got >= 200 && got < 300, "README.md:%d answered %d: %s\n%s", ex.line, got, ex.cmd, out)
		}
		if ex.body != "" {
			require.Contains(t, string(out), ex.body, "README.md:%d: the body its comment shows", ex.line)
		}
		t.Logf("README.md:%d: %d (want %d)", ex.line, got, ex.status)
	}
}

func TestREADMEExampleParser(t *testing.T) {
	t.Parallel()
	ex := readmeExamples(t, "```sh\nX=1\ncurl -i a -d '{\n \"a\": 1\n}'\n# HTTP/1.1 201 Created\ncurl -s b   # 202; a second is 404\ncurl c \\\n  -d x\n# {\"last_status\":503}\n```\n```go\ncurl d # 200\n```\n")
	require.Len(t, ex, 3)
	require.Equal(t, []string{"X=1"}, ex[0].setup)
	require.Equal(t, "curl -i a -d '{\n \"a\": 1\n}'", ex[0].cmd)
	require.Equal(t, 201, ex[0].status)
	require.Equal(t, 202, ex[1].status)
	require.Equal(t, "curl c \\\n  -d x", ex[2].cmd)
	require.Equal(t, 0, ex[2].status, "a JSON body's number is no status")
	ex = readmeExamples(t, "```sh\ncurl x\n# 409 {\"message\":\"exists\"}\n```\n")
	require.Equal(t, `{"message":"exists"}`, ex[0].body)
}
