package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pennant/pennant/internal/webhooks"
)

// A task that never ends is killed at -timeout with everything it started, and answered 500.
func TestTaskThatNeverEndsIsKilledWithItsProcessGroup(t *testing.T) {
	const marker = "3600.0417"
	ts := startServer(t, Config{Timeout: time.Second, Exec: ExecPolicy{Allow: true, Prefixes: ParsePrefixes("sleep,bash -c")}})
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		// A shell with a child of its own in the background: both must go.
		code, body := ts.post("/", map[string]string{"type": "bash", "cmd": "bash -c 'sleep " + marker + " & sleep " + marker + "; wait'"})
		done <- answer{code, body}
	}()
	eventually(t, 5*time.Second, "the sleeps started", func() bool { return len(processesWith(t, marker)) == 3 })
	var a answer
	select {
	case a = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10s after a 1s timeout")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered after %v, want about the 1s timeout", took)
	}
	if a.code != http.StatusInternalServerError || !strings.Contains(a.body, "timed out after 1s") {
		t.Errorf("answer %d %q, want 500 with the timeout", a.code, a.body)
	}
	eventually(t, 3*time.Second, "no process of the task is left", func() bool { return len(processesWith(t, marker)) == 0 })

	// A per-task metadata timeout shortens -timeout.
	start = time.Now()
	code, body := ts.post("/", map[string]string{"type": "bash", "cmd": "sleep " + marker, "timeout": "200ms"})
	if code != http.StatusInternalServerError || !strings.Contains(body, "timed out after 200ms") || time.Since(start) > 3*time.Second {
		t.Errorf("metadata timeout: %d %q after %v", code, body, time.Since(start))
	}
	eventually(t, 3*time.Second, "no process of the task is left", func() bool { return len(processesWith(t, marker)) == 0 })
}

// A caller that gives up (the controller's webhook timeout) does not leave its blocking task running.
func TestBlockingTaskEndsWhenTheCallerGivesUp(t *testing.T) {
	const marker = "3600.0815"
	ts := startServer(t, Config{Exec: ExecPolicy{Allow: true, Prefixes: ParsePrefixes("sleep")}})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/", strings.NewReader(`{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"sleep `+marker+`"}}`))
	go func() {
		time.Sleep(200 * time.Millisecond)
		if len(processesWith(t, marker)) == 0 {
			t.Error("the sleep did not start")
		}
	}()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d before the caller gave up", resp.StatusCode)
	}
	eventually(t, 3*time.Second, "the task's process is gone after its caller left", func() bool { return len(processesWith(t, marker)) == 0 })
}

// An output of 100 MiB is truncated to -max-output-bytes (beginning and end) in bounded memory.
func TestHugeOutputIsTruncatedInBoundedMemory(t *testing.T) {
	const maxOutput = 64 << 10
	ts := startServer(t, Config{MaxOutputBytes: maxOutput, Exec: ExecPolicy{Allow: true, Prefixes: ParsePrefixes("head")}})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	code, body := ts.post("/", map[string]string{"type": "bash", "cmd": "head -c 104857600 /dev/zero", "returnCmdOutput": "true"})
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if code != http.StatusOK {
		t.Fatalf("status %d: %.200q", code, body)
	}
	if len(body) > maxOutput+200 {
		t.Errorf("answer of %d bytes, want at most -max-output-bytes (%d) and a note", len(body), maxOutput)
	}
	if want := "[... 104792064 bytes of output dropped (-max-output-bytes) ...]"; !strings.Contains(body, want) {
		t.Errorf("answer does not say what was dropped (%q)", want)
	}
	// Everything allocated while 100 MiB went through: the output is never held whole.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("the task allocated %d MiB for a 100 MiB output", alloc>>20)
	}
}

// cmd tasks are deduplicated per canary and command while they run, and bounded in number.
func TestBackgroundTasksAreDeduplicatedAndBounded(t *testing.T) {
	hey := newFakeHey()
	defer hey.finish()
	ts := startServer(t, Config{Engines: []Engine{hey}, MaxConcurrentTasks: 2})
	load := map[string]string{"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"}
	for range 3 {
		if code, body := ts.post("/", load); code != http.StatusAccepted {
			t.Fatalf("status %d %q, want 202", code, body)
		}
	}
	eventually(t, 5*time.Second, "the load test started", func() bool { return hey.running.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := hey.runs.Load(); n != 1 {
		t.Fatalf("the same command for the same canary ran %d times at once, want 1", n)
	}
	if code, _ := ts.post("/", map[string]string{"cmd": "hey -z 1m http://podinfo-canary.test:9898/b"}); code != http.StatusAccepted {
		t.Fatal("a second command was refused")
	}
	eventually(t, 5*time.Second, "the second load test started", func() bool { return hey.running.Load() == 2 })
	code, body := ts.post("/", map[string]string{"cmd": "hey -z 1m http://podinfo-canary.test:9898/c"})
	if code != http.StatusTooManyRequests || !strings.Contains(body, "-max-concurrent-tasks=2") {
		t.Fatalf("a third task beyond the bound: %d %q, want 429", code, body)
	}
	hey.finish()
	eventually(t, 5*time.Second, "the load tests ended", func() bool { return hey.running.Load() == 0 })
	// Once finished, the same command runs again (Flagger's rollout hooks send it every interval).
	eventually(t, 5*time.Second, "the command runs again", func() bool {
		code, _ := ts.post("/", load)
		return code == http.StatusAccepted && hey.runs.Load() >= 3
	})
}

// Close kills every task, processes included, and leaves no goroutine behind.
func TestCloseLeavesNoProcessOrGoroutine(t *testing.T) {
	const marker = "3600.1234"
	http.DefaultClient.CloseIdleConnections()
	base := runtime.NumGoroutine()
	hey := newFakeHey()
	ts := startServer(t, Config{Engines: []Engine{hey}, Exec: ExecPolicy{Allow: true, Prefixes: ParsePrefixes("sleep")}})
	if code, _ := ts.post("/", map[string]string{"cmd": "sleep " + marker}); code != http.StatusAccepted {
		t.Fatal("the background command was refused")
	}
	if code, _ := ts.post("/", map[string]string{"cmd": "hey -z 1h http://podinfo-canary.test:9898/"}); code != http.StatusAccepted {
		t.Fatal("the load test was refused")
	}
	blocking := make(chan int, 1)
	go func() {
		code, _ := ts.post("/", map[string]string{"type": "bash", "cmd": "sleep " + marker})
		blocking <- code
	}()
	eventually(t, 5*time.Second, "the tasks started", func() bool {
		return len(processesWith(t, marker)) == 2 && hey.running.Load() == 1
	})
	closed := make(chan struct{})
	go func() { ts.stop(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if code := <-blocking; code != http.StatusInternalServerError {
		t.Errorf("the blocking task was answered %d, want 500", code)
	}
	if pids := processesWith(t, marker); len(pids) > 0 {
		t.Errorf("processes %v outlived Close", pids)
	}
	if code, _ := ts.srvPost(map[string]string{"cmd": "hey -z 1s http://x"}); code != http.StatusServiceUnavailable {
		t.Errorf("a task after Close: %d, want 503", code)
	}
	goroutinesSettle(t, base)
}

// srvPost submits a task to the handler directly (the listener is closed).
func (ts *testServer) srvPost(metadata map[string]string) (int, string) {
	body, _ := json.Marshal(webhooks.Payload{Name: "podinfo", Namespace: "test", Metadata: metadata})
	rec := httptest.NewRecorder()
	ts.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	return rec.Code, rec.Body.String()
}
