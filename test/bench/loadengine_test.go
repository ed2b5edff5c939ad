package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// heyVersion is the hey the engine is compared with, built from its Go module.
	heyVersion  = "v0.1.5"
	loadSeconds = 10
	loadWorkers = 50
	// loadNoise is the margin within which the targets count as met: the machine is shared.
	loadNoise = 0.05
)

// loadRun is what one load generator achieved against the loopback server.
type loadRun struct {
	requests int64         // counted by the server
	wall     time.Duration // of the child process
	cpu      time.Duration // user + system time of the child process
}

func (r loadRun) add(o loadRun) loadRun {
	return loadRun{r.requests + o.requests, r.wall + o.wall, r.cpu + o.cpu}
}
func (r loadRun) rps() float64 { return float64(r.requests) / r.wall.Seconds() }
func (r loadRun) cpuPer100k() float64 {
	return r.cpu.Seconds() / float64(max(r.requests, 1)) * 100_000
}

// BenchmarkLoadEngine runs the load tester's built-in hey engine and hey itself against the same
// loopback server, each as a child process with the same command line (-z 10s -c 50, no rate limit),
// in the order hey, engine, engine, hey so that a drift of the shared machine's load evens out. It
// reports requests per second (counted by the server, over the child's wall time) and CPU seconds
// (the child's user + system time, from wait4's rusage) per 100,000 requests, and their ratios.
// Target: at least hey's throughput at no more CPU per request.
func BenchmarkLoadEngine(b *testing.B) {
	hey := heyBinary(b)
	engine := filepath.Join(b.TempDir(), "heyengine")
	if out, err := exec.Command("go", "build", "-o", engine, "github.com/pennant/pennant/test/bench/heyengine").CombinedOutput(); err != nil {
		b.Fatalf("go build heyengine: %v\n%s", err, out)
	}
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	flags := fmt.Sprintf("-z %ds -c %d %s/", loadSeconds, loadWorkers, srv.URL)

	for b.Loop() {
		loadBefore := loadAverage()
		var heyRuns, engineRuns loadRun
		for _, first := range []bool{true, false} {
			runHey := func() { heyRuns = heyRuns.add(runLoad(b, &served, hey, strings.Fields(flags)...)) }
			runEngine := func() { engineRuns = engineRuns.add(runLoad(b, &served, engine, "hey "+flags)) }
			if first {
				runHey()
				runEngine()
			} else {
				runEngine()
				runHey()
			}
		}
		rpsRatio := engineRuns.rps() / heyRuns.rps()
		cpuRatio := engineRuns.cpuPer100k() / heyRuns.cpuPer100k()
		b.ReportMetric(engineRuns.rps(), "engine-req/s")
		b.ReportMetric(heyRuns.rps(), "hey-req/s")
		b.ReportMetric(rpsRatio, "req/s-ratio")
		b.ReportMetric(cpuRatio, "cpu/req-ratio")
		fmt.Printf("load engine vs hey %s (-c %d, 2 x %ds each, loopback): engine %.0f req/s, %.2f CPU s per 100k requests; "+
			"hey %.0f req/s, %.2f CPU s per 100k requests; throughput %.2f x hey's (target >= 1), CPU per request %.2f x hey's (target <= 1); load average %s -> %s\n",
			heyVersion, loadWorkers, loadSeconds, engineRuns.rps(), engineRuns.cpuPer100k(), heyRuns.rps(), heyRuns.cpuPer100k(),
			rpsRatio, cpuRatio, loadBefore, loadAverage())
		if rpsRatio < 1-loadNoise || cpuRatio > 1+loadNoise {
			b.Errorf("the engine misses its target beyond the %.0f%% noise margin: throughput %.2f x, CPU per request %.2f x hey's",
				loadNoise*100, rpsRatio, cpuRatio)
		}
	}
}

// runLoad runs a load generator as a child process and measures it.
func runLoad(b *testing.B, served *atomic.Int64, bin string, args ...string) loadRun {
	b.Helper()
	before := served.Load()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %q: %v\n%s", filepath.Base(bin), args, err, stderr.String())
	}
	return loadRun{
		requests: served.Load() - before,
		wall:     time.Since(began),
		cpu:      cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
	}
}

// heyBinary returns hey built from its Go module into the user's cache, as hack/local-cluster.sh
// caches the control plane's binaries: $PENNANT_CACHE, else $XDG_CACHE_HOME/pennant or ~/.cache/pennant.
func heyBinary(b *testing.B) string {
	b.Helper()
	cache := os.Getenv("PENNANT_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			b.Fatalf("no cache directory: %v", err)
		}
		cache = filepath.Join(dir, "pennant")
	}
	gobin := filepath.Join(cache, "tools", "hey-"+heyVersion)
	bin := filepath.Join(gobin, "hey")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", "github.com/rakyll/hey@"+heyVersion)
	cmd.Dir = b.TempDir() // outside this module: go install pkg@version ignores it anyway
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go install github.com/rakyll/hey@%s: %v\n%s", heyVersion, err, out)
	}
	return bin
}

// loadAverage is the machine's 1-minute load average, printed because the ratios are only as steady
// as the machine is quiet.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(raw)); err == nil && len(fields) > 0 {
		return fields[0]
	}
	return "unknown"
}
