package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// What a release wave costs the machine: which process spent the CPU, and how long the API server
// took over the writes a step waits on. Printed by BenchmarkScale to explain its lateness.

// controlPlane are the local control plane's processes (hack/local-cluster.sh keeps their pid files
// in LOCAL_CLUSTER_DIR).
var controlPlane = []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok"}

// cpuSeconds is the CPU time (user and system) each process has used so far: the control plane's,
// and pennant's (pid) as "pennant". A process whose pid file or /proc entry cannot be read is left
// out.
func cpuSeconds(pennant int) map[string]float64 {
	out := map[string]float64{}
	if s, ok := procCPU(pennant); ok {
		out["pennant"] = s
	}
	dir := os.Getenv("LOCAL_CLUSTER_DIR")
	for _, name := range controlPlane {
		raw, err := os.ReadFile(filepath.Join(dir, name+".pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			continue
		}
		if s, ok := procCPU(pid); ok {
			out[name] = s
		}
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on every Linux Go runs on).
const clockTicks = 100

// procCPU reads utime and stime from /proc/<pid>/stat.
func procCPU(pid int) (float64, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: the fields that follow start after its ')'.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) / clockTicks, true
}

// printWaveCPU prints the CPU each process used during the release, and what share of the
// machine's cores that was over its wall time.
func printWaveCPU(sc scaleScenario, before, after map[string]float64, wall time.Duration) {
	var parts []string
	total := 0.0
	for _, name := range append([]string{"pennant"}, controlPlane...) {
		if a, ok := after[name]; ok {
			d := a - before[name]
			total += d
			parts = append(parts, fmt.Sprintf("%s %.0f", name, d))
		}
	}
	fmt.Printf("%s, %d canaries: CPU seconds during the release (%s, %.0f%% of the machine's %d cores): %s\n",
		sc.provider, sc.n, wall.Round(time.Second), 100*total/wall.Seconds()/float64(cores()), cores(), strings.Join(parts, ", "))
}

func cores() int { return runtime.NumCPU() }

// waveWrites are the API requests a release's steps wait on, as the API server labels them.
var waveWrites = []string{"PATCH canaries/status", "PUT deployments", "PATCH deployments", "PUT virtualservices", "POST events"}

// printWriteLatency prints the API server's own time for the writes a step waits on, p50 and p99
// over the release (apiserver_request_duration_seconds, every client's requests together).
func printWriteLatency(b *testing.B, sc scaleScenario, before, after map[string]*dto.MetricFamily) {
	b.Helper()
	byRequest := func(fams map[string]*dto.MetricFamily, want string) *dto.MetricFamily {
		out := &dto.MetricFamily{}
		for _, m := range fams["apiserver_request_duration_seconds"].GetMetric() {
			if requestKey(m) == want {
				out.Metric = append(out.Metric, m)
			}
		}
		return out
	}
	var parts []string
	for _, w := range waveWrites {
		h := histogramDelta(byRequest(after, w), byRequest(before, w))
		if len(h) == 0 || h[len(h)-1].count == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s p50 %.3fs p99 %.3fs", w, quantile(h, 0.5), quantile(h, 0.99)))
	}
	fmt.Printf("%s, %d canaries: the API server's time for the writes steps wait on: %s\n", sc.provider, sc.n, strings.Join(parts, "; "))
}

// requestKey is a request's "VERB resource/subresource", from an apiserver metric's labels.
func requestKey(m *dto.Metric) string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return strings.TrimSuffix(l["verb"]+" "+l["resource"]+"/"+l["subresource"], "/")
}
