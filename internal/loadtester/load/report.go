package load

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what a run did.
type Report struct {
	// Method and URL are the requests' target.
	Method, URL string
	// Workers is the number of concurrent workers; RatePerWorker their limit (0: none).
	Workers       int
	RatePerWorker float64
	// Elapsed is the wall time from the first request to the end of the last.
	Elapsed time.Duration
	// Requests counts the requests that ended: with a response or with an error.
	Requests int64
	// StatusCodes counts the responses by status code.
	StatusCodes map[int]int64
	// Errors counts the requests without a (complete) response by kind; ErrorSamples holds the first
	// message seen of each kind.
	Errors       map[string]int64
	ErrorSamples map[string]string
	// Latency summarizes the responses' latencies (errors are not included, as in hey).
	Latency Latency
	// RPS is Requests per second of Elapsed.
	RPS float64
	// Cancelled is true when the run was stopped by its context before it was done.
	Cancelled bool
	// Notes are the Spec's notes on ignored flags.
	Notes []string
}

// Latency are latency statistics; percentiles are accurate to 1%.
type Latency struct {
	Mean, P50, P90, P95, P99, Max time.Duration
}

// Responses is the number of requests that got a response.
func (r Report) Responses() int64 {
	var n int64
	for _, c := range r.StatusCodes {
		n += c
	}
	return n
}

// String is the summary written to the task's log.
func (r Report) String() string {
	var b strings.Builder
	rate := "no rate limit"
	if r.RatePerWorker > 0 {
		rate = fmt.Sprintf("%g req/s per worker", r.RatePerWorker)
	}
	fmt.Fprintf(&b, "hey (built-in engine): %s %s, %d workers, %s", r.Method, r.URL, r.Workers, rate)
	if r.Cancelled {
		b.WriteString(", cancelled before the end")
	}
	fmt.Fprintf(&b, "\n  requests:     %d in %s, %.1f req/s\n", r.Requests, r.Elapsed.Round(time.Millisecond), r.RPS)
	fmt.Fprintf(&b, "  status codes: %s\n", countsOf(r.StatusCodes, func(c int) string { return fmt.Sprint(c) }))
	fmt.Fprintf(&b, "  errors:       %s\n", countsOf(r.Errors, func(k string) string { return k }))
	for _, kind := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
		fmt.Fprintf(&b, "    %s, e.g.: %s\n", kind, r.ErrorSamples[kind])
	}
	if r.Responses() > 0 {
		l := r.Latency
		fmt.Fprintf(&b, "  latency:      p50 %s, p90 %s, p95 %s, p99 %s, max %s, mean %s\n",
			short(l.P50), short(l.P90), short(l.P95), short(l.P99), short(l.Max), short(l.Mean))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// countsOf lists counts as "a: 1, b: 2" in key order, "none" when empty.
func countsOf[K int | string](counts map[K]int64, name func(K) string) string {
	if len(counts) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(counts))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s: %d", name(k), counts[k]))
	}
	return strings.Join(parts, ", ")
}

// short rounds a latency to three significant digits or so.
func short(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(100 * time.Nanosecond).String()
	}
}
