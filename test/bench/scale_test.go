package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

// scaleScenario is one run of BenchmarkScale: n canaries of a provider.
type scaleScenario struct {
	provider string
	n        int
}

// scaleScenarios are issue 15's: 100 and 1,000 blue/green canaries (kubernetes provider) and 1,000
// Istio canaries. BENCH_SCALE overrides them, e.g. "kubernetes:100,istio:1000"; BENCH_PENNANT_ARGS
// adds flags to pennant's defaults, e.g. "-threadiness=8".
func scaleScenarios(b *testing.B) []scaleScenario {
	spec := os.Getenv("BENCH_SCALE")
	if spec == "" {
		spec = "kubernetes:100,kubernetes:1000,istio:1000"
	}
	var out []scaleScenario
	for _, item := range strings.Split(spec, ",") {
		provider, n, ok := strings.Cut(strings.TrimSpace(item), ":")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || count < 1 {
			b.Fatalf("BENCH_SCALE item %q: want provider:count", item)
		}
		out = append(out, scaleScenario{provider, count})
	}
	return out
}

// The release of every canary: analysis interval 1m (the seeds'), two iterations, no metrics (the
// controller's own cost is what is measured).
const (
	scaleInterval   = "1m"
	scaleIterations = 2
)

// BenchmarkScale runs the real pennant binary with its default flags on one namespace of n
// canaries: it initializes them all, measures the API requests of the idle canaries over a minute,
// then releases them all at once and reports how late their analysis steps began (p50, p99), the
// API requests per canary per release, the controller's peak RSS and CPU seconds. Targets: steps
// within 1s p99, no idle requests, at most 20 requests per canary per release, under 200 MiB.
func BenchmarkScale(b *testing.B) {
	bin := buildPennant(b)
	var rows []string
	for _, sc := range scaleScenarios(b) {
		b.Run(fmt.Sprintf("%s-%d", sc.provider, sc.n), func(b *testing.B) {
			for b.Loop() {
				rows = append(rows, runScale(b, bin, sc))
			}
		})
	}
	fmt.Printf("\n%-22s  %-9s  %-12s  %-10s  %-10s  %-12s  %-9s  %s\n", "scale (interval 1m)", "init", "idle req/min", "late p50", "late p99",
		"req/release", "peak RSS", "CPU s")
	for _, r := range rows {
		fmt.Println(r)
	}
	fmt.Println("targets: idle 0 requests, steps late <= 1s p99, <= 20 requests per canary per release, RSS < 200 MiB")
}

func runScale(b *testing.B, bin string, sc scaleScenario) string {
	env := testenv.Start(b)
	env.RequireCluster(b)
	ns := env.NewNamespace(b)
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 2000, 2000
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, sc.n)
	for i := range names {
		names[i] = fmt.Sprintf("app%04d", i)
	}
	parallel(b, names, func(name string) error {
		cd := bgCanary(name, scaleInterval, scaleIterations)
		cd.Spec.Provider = sc.provider
		for _, o := range []client.Object{deployment(name), cd} {
			o.SetNamespace(ns)
			if err := c.Create(context.Background(), o); err != nil {
				return err
			}
		}
		return nil
	})

	began := time.Now()
	pid, port, stop := startPennant(b, bin, append([]string{"-namespace=" + ns}, strings.Fields(os.Getenv("BENCH_PENNANT_ARGS"))...)...)
	defer stop()
	s := &setup{ns: ns, c: c}
	s.waitAll(b, sc.n, flaggerv1.CanaryPhaseInitialized, 20*time.Minute)
	initialized := time.Since(began)
	time.Sleep(10 * time.Second) // initialization's last events

	idleBefore := scrape(b, port)
	time.Sleep(time.Minute)
	idle := (counter(scrape(b, port), "rest_client_requests_total") - counter(idleBefore, "rest_client_requests_total")) / float64(sc.n)

	before, apiBefore, cpuBefore := scrape(b, port), apiMetrics(b, env), cpuSeconds(pid)
	released := time.Now()
	parallel(b, names, func(name string) error {
		d := &appsv1.Deployment{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
		return c.Update(context.Background(), d)
	})
	s.waitAll(b, sc.n, flaggerv1.CanaryPhaseSucceeded, 30*time.Minute)
	time.Sleep(5 * time.Second) // the last steps' status writes
	after, apiAfter, cpuAfter := scrape(b, port), apiMetrics(b, env), cpuSeconds(pid)
	printBreakdown(sc, apiRequests(apiBefore), apiRequests(apiAfter))
	printWriteLatency(b, sc, apiBefore, apiAfter)
	printWaveCPU(sc, cpuBefore, cpuAfter, time.Since(released))
	printReleaseEvents(b, c, sc, ns, released)
	perRelease := (counter(after, "rest_client_requests_total") - counter(before, "rest_client_requests_total")) / float64(sc.n)
	late := histogramDelta(after["pennant_analysis_step_lateness_seconds"], before["pennant_analysis_step_lateness_seconds"])
	printWhereTheTimeWent(sc, before, after, late)
	cpu := counter(after, "process_cpu_seconds_total")
	peak := vmHWM(b, pid)

	b.ReportMetric(quantile(late, 0.99), "late-p99-s")
	b.ReportMetric(perRelease, "requests/canary/release")
	b.ReportMetric(float64(peak>>20), "peak-MiB")
	return fmt.Sprintf("%-22s  %-9s  %12.2f  %9.3fs  %9.3fs  %12.1f  %5d MiB  %6.0f",
		fmt.Sprintf("%s, %d canaries", sc.provider, sc.n), initialized.Round(time.Second), idle,
		quantile(late, 0.5), quantile(late, 0.99), perRelease, peak>>20, cpu)
}

// printReleaseEvents prints how many events the controller recorded per canary during the release,
// by message (the canary's name taken out), so that events lost under load show.
func printReleaseEvents(b *testing.B, c client.Client, sc scaleScenario, ns string, since time.Time) {
	b.Helper()
	var list corev1.EventList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		b.Fatalf("listing events: %v", err)
	}
	byMessage := map[string]int{}
	total := 0
	for _, e := range list.Items {
		if e.InvolvedObject.Kind != "Canary" || e.LastTimestamp.Time.Before(since.Truncate(time.Second)) {
			continue
		}
		msg := strings.ReplaceAll(e.Message, e.InvolvedObject.Name, "NAME")
		byMessage[msg] += int(max(e.Count, 1))
		total += int(max(e.Count, 1))
	}
	var parts []string
	for m, n := range byMessage {
		parts = append(parts, fmt.Sprintf("%q %.2f", m, float64(n)/float64(sc.n)))
	}
	sort.Strings(parts)
	fmt.Printf("%s, %d canaries: %.2f events per canary during the release: %s\n", sc.provider, sc.n, float64(total)/float64(sc.n), strings.Join(parts, ", "))
}

// parallel runs fn for every name on 20 workers and fails on the first error.
func parallel(b *testing.B, names []string, fn func(string) error) {
	b.Helper()
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if err := fn(name); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// waitAll waits until n canaries of the namespace are in phase want, listing them every 2s.
func (s *setup) waitAll(b *testing.B, n int, want flaggerv1.CanaryPhase, timeout time.Duration) {
	b.Helper()
	testenv.Eventually(b, timeout, 2*time.Second, func() (bool, string) {
		var list flaggerv1.CanaryList
		if err := s.c.List(context.Background(), &list, client.InNamespace(s.ns)); err != nil {
			return false, err.Error()
		}
		phases := map[flaggerv1.CanaryPhase]int{}
		for i := range list.Items {
			phases[list.Items[i].Status.Phase]++
		}
		return phases[want] == n, fmt.Sprintf("phases %v, want %d %s", phases, n, want)
	})
}

// scrape reads pennant's /metrics.
func scrape(b *testing.B, port int) map[string]*dto.MetricFamily {
	b.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		b.Fatalf("scraping pennant: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatalf("parsing pennant's metrics: %v", err)
	}
	return families
}

// counter sums a counter's (or gauge's) series.
func counter(families map[string]*dto.MetricFamily, name string) float64 {
	return sum(families[name])
}

// sum adds up a counter's (or gauge's) series.
func sum(fam *dto.MetricFamily) float64 {
	var total float64
	for _, m := range fam.GetMetric() {
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return total
}

// bucket is a histogram bucket: the observations up to its upper bound.
type bucket struct {
	le    float64
	count float64
}

// printWhereTheTimeWent prints what explains the steps' lateness: the canary work queue's wait and
// its reconciles' duration (p50, p99), the reconciles per canary during the release, and the
// lateness histogram itself.
func printWhereTheTimeWent(sc scaleScenario, before, after map[string]*dto.MetricFamily, late []bucket) {
	canaryOnly := func(name, label string) []bucket {
		return histogramDelta(only(after[name], label, "canary"), only(before[name], label, "canary"))
	}
	wait := canaryOnly("workqueue_queue_duration_seconds", "name")
	work := canaryOnly("controller_runtime_reconcile_time_seconds", "controller")
	reconcilesOf := func(fams map[string]*dto.MetricFamily, result string) float64 {
		total := 0.0
		for _, m := range only(fams["controller_runtime_reconcile_total"], "controller", "canary").GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && (result == "" || l.GetValue() == result) {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return total
	}
	reconciles := reconcilesOf(after, "") - reconcilesOf(before, "")
	failed := reconcilesOf(after, "error") - reconcilesOf(before, "error")
	var hist []string
	for i, bk := range late {
		below := 0.0
		if i > 0 {
			below = late[i-1].count
		}
		if bk.count > below {
			hist = append(hist, fmt.Sprintf("<=%gs: %.0f", bk.le, bk.count-below))
		}
	}
	fmt.Printf("%s, %d canaries: queue wait p50 %.3fs p99 %.3fs; reconcile p50 %.3fs p99 %.3fs; %.1f reconciles per canary (%.0f failed, retried with the queue's backoff); steps late %s\n",
		sc.provider, sc.n, quantile(wait, 0.5), quantile(wait, 0.99), quantile(work, 0.5), quantile(work, 0.99),
		reconciles/float64(sc.n), failed, strings.Join(hist, ", "))
}

// only is a metric family's series whose label has the value.
func only(fam *dto.MetricFamily, label, value string) *dto.MetricFamily {
	out := &dto.MetricFamily{}
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				out.Metric = append(out.Metric, m)
			}
		}
	}
	return out
}

// histogramDelta is the buckets of a histogram's observations between two scrapes.
func histogramDelta(after, before *dto.MetricFamily) []bucket {
	counts := map[float64]float64{}
	for _, f := range []struct {
		fam  *dto.MetricFamily
		sign float64
	}{{after, 1}, {before, -1}} {
		for _, m := range f.fam.GetMetric() {
			for _, bk := range m.GetHistogram().GetBucket() {
				counts[bk.GetUpperBound()] += f.sign * float64(bk.GetCumulativeCount())
			}
		}
	}
	var out []bucket
	for le, n := range counts {
		out = append(out, bucket{le, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].le < out[j].le })
	return out
}

// quantile interpolates a quantile within cumulative buckets, as PromQL's histogram_quantile does
// (NaN without observations).
func quantile(buckets []bucket, q float64) float64 {
	if len(buckets) == 0 {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank, lower, below := q*total, 0.0, 0.0
	for _, bk := range buckets {
		if bk.count >= rank {
			if math.IsInf(bk.le, 1) {
				return lower
			}
			return lower + (bk.le-lower)*(rank-below)/math.Max(bk.count-below, 1e-9)
		}
		lower, below = bk.le, bk.count
	}
	return lower
}

// vmHWM is a process's peak resident set size, in bytes.
func vmHWM(b *testing.B, pid int) int64 { return procStatusBytes(b, pid, "VmHWM") }

// apiMetrics is the API server's metrics, parsed.
func apiMetrics(b *testing.B, env *testenv.Env) map[string]*dto.MetricFamily {
	b.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(apiserverMetrics(b, env)))
	if err != nil {
		b.Fatalf("parsing the apiserver's metrics: %v", err)
	}
	return families
}

// apiRequests is the apiserver's apiserver_request_total by verb, resource and subresource.
func apiRequests(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		out[requestKey(m)] += m.GetCounter().GetValue()
	}
	return out
}

// printBreakdown prints where a release's API requests went, per canary, all clients together
// (the benchmark's own: a GET and an UPDATE of each Deployment; kube-controller-manager's too).
func printBreakdown(sc scaleScenario, before, after map[string]float64) {
	type row struct {
		k string
		v float64
	}
	var rows []row
	for k, v := range after {
		if d := (v - before[k]) / float64(sc.n); d >= 0.05 {
			rows = append(rows, row{k, d})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].v > rows[j].v })
	var parts []string
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%s %.2f", r.k, r.v))
	}
	fmt.Printf("%s, %d canaries: apiserver requests per canary during the release, every client: %s\n", sc.provider, sc.n, strings.Join(parts, ", "))
}
