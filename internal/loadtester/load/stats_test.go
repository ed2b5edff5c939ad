package load

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestBucketsAreWithinOnePercent(t *testing.T) {
	prev := -1
	for ns := uint64(0); ns < 1<<41; ns = ns*17/16 + 1 {
		i := bucketOf(ns)
		if i < prev || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d: not monotonic within [0, %d)", ns, i, prev, numBuckets)
		}
		prev = i
		if ns >= 1<<40 {
			continue // beyond the range: the last bucket
		}
		if v := bucketValue(i); math.Abs(float64(v)-float64(ns)) > 0.01*float64(ns)+0.5 {
			t.Errorf("bucketValue(bucketOf(%d)) = %d: more than 1%% off", ns, v)
		}
	}
}

func TestPercentilesOfAKnownDistribution(t *testing.T) {
	st := newStats(3)
	for i := 1; i <= 1000; i++ { // 1ms .. 1s, spread over the shards
		st.shardFor(i).response(200, time.Duration(i)*time.Millisecond)
	}
	st.failure(st.shardFor(0), errTimeout, errors.New("first"))
	st.failure(st.shardFor(0), errTimeout, errors.New("second"))
	var r Report
	st.fill(&r)
	check := func(name string, got, want time.Duration) {
		if math.Abs(float64(got-want)) > 0.01*float64(want) {
			t.Errorf("%s = %v, want %v ± 1%%", name, got, want)
		}
	}
	check("p50", r.Latency.P50, 500*time.Millisecond)
	check("p90", r.Latency.P90, 900*time.Millisecond)
	check("p95", r.Latency.P95, 950*time.Millisecond)
	check("p99", r.Latency.P99, 990*time.Millisecond)
	check("mean", r.Latency.Mean, 500500*time.Microsecond)
	if r.Latency.Max != time.Second {
		t.Errorf("max = %v, want exactly 1s", r.Latency.Max)
	}
	if r.Requests != 1002 || r.StatusCodes[200] != 1000 || r.Errors["timeout"] != 2 || r.ErrorSamples["timeout"] != "first" {
		t.Errorf("counts: %+v", r)
	}
}

// A run's counters have a fixed size whatever its length or concurrency.
func TestStatsMemoryIsBounded(t *testing.T) {
	if n := len(newStats(MaxConcurrency).shards); n != maxShards {
		t.Errorf("%d shards for %d workers, want %d", n, MaxConcurrency, maxShards)
	}
	st := newStats(1)
	for i := range 1_000_000 {
		st.shards[0].response(200+i%2, time.Duration(i)*time.Microsecond)
	}
	var r Report
	st.fill(&r)
	if r.Requests != 1_000_000 || fmt.Sprint(r.StatusCodes) != "map[200:500000 201:500000]" {
		t.Errorf("counts after a million responses: %d %v", r.Requests, r.StatusCodes)
	}
}
