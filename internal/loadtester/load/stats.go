package load

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Latencies are counted in a log-linear histogram, not kept one by one, so that a long run uses fixed
// memory: below 256ns one bucket per nanosecond, above it 128 buckets per power of two, so a bucket is
// at most 1/128 (0.8%) of its value wide. Values above 2^40ns (18 minutes) land in the last bucket; the
// maximum is kept exactly.
const (
	linearBuckets = 256
	subBuckets    = 128
	maxShift      = 40 - 8
	numBuckets    = linearBuckets + maxShift*subBuckets
	// maxStatus bounds the status codes counted one by one; Go's client accepts three digits.
	maxStatus = 1000
	// maxShards bounds the memory of a run whatever its concurrency.
	maxShards = 8
)

func bucketOf(ns uint64) int {
	if ns < linearBuckets {
		return int(ns)
	}
	shift := bits.Len64(ns) - 8 // ns>>shift is in [128, 256)
	if shift > maxShift {
		return numBuckets - 1
	}
	return linearBuckets + (shift-1)*subBuckets + int(ns>>shift) - subBuckets
}

// bucketValue is the middle of a bucket, in nanoseconds.
func bucketValue(i int) uint64 {
	if i < linearBuckets {
		return uint64(i)
	}
	shift := (i-linearBuckets)/subBuckets + 1
	low := uint64((i-linearBuckets)%subBuckets+subBuckets) << shift
	return low + (uint64(1)<<shift)/2
}

// shard is the counters some workers share; workers are spread over a few shards so that they rarely
// write the same cache line.
type shard struct {
	latency   [numBuckets]atomic.Uint64
	status    [maxStatus]atomic.Uint64
	errors    [numErrorKinds]atomic.Uint64
	latencyNS atomic.Uint64 // sum, for the mean
	maxNS     atomic.Uint64
}

func (s *shard) response(code int, latency time.Duration) {
	ns := uint64(max(latency, 0))
	s.latency[bucketOf(ns)].Add(1)
	s.latencyNS.Add(ns)
	for old := s.maxNS.Load(); ns > old && !s.maxNS.CompareAndSwap(old, ns); old = s.maxNS.Load() {
	}
	if code < 0 || code >= maxStatus {
		code = 0
	}
	s.status[code].Add(1)
}

// stats is what a run has counted so far.
type stats struct {
	shards []*shard

	mu           sync.Mutex
	errorSamples map[errorKind]string // the first error message of each kind
}

func newStats(workers int) *stats {
	st := &stats{shards: make([]*shard, min(workers, maxShards)), errorSamples: map[errorKind]string{}}
	for i := range st.shards {
		st.shards[i] = &shard{}
	}
	return st
}

func (st *stats) shardFor(worker int) *shard { return st.shards[worker%len(st.shards)] }

func (st *stats) failure(sh *shard, kind errorKind, err error) {
	if sh.errors[kind].Add(1) > 1 {
		return // a sample per kind per shard is enough to try
	}
	st.mu.Lock()
	if _, ok := st.errorSamples[kind]; !ok {
		st.errorSamples[kind] = err.Error()
	}
	st.mu.Unlock()
}

// fill adds the counts to a report: requests, status codes, errors and latency percentiles.
func (st *stats) fill(r *Report) {
	var hist [numBuckets]uint64
	var sumNS, maxNS, responses uint64
	for _, sh := range st.shards {
		for i := range hist {
			hist[i] += sh.latency[i].Load()
		}
		for code := range sh.status {
			if n := sh.status[code].Load(); n > 0 {
				if r.StatusCodes == nil {
					r.StatusCodes = map[int]int64{}
				}
				r.StatusCodes[code] += int64(n)
				responses += n
			}
		}
		for k := range sh.errors {
			if n := sh.errors[k].Load(); n > 0 {
				if r.Errors == nil {
					r.Errors = map[string]int64{}
				}
				r.Errors[errorKind(k).String()] += int64(n)
				r.Requests += int64(n)
			}
		}
		sumNS += sh.latencyNS.Load()
		maxNS = max(maxNS, sh.maxNS.Load())
	}
	r.Requests += int64(responses)
	st.mu.Lock()
	for k, msg := range st.errorSamples {
		if r.ErrorSamples == nil {
			r.ErrorSamples = map[string]string{}
		}
		r.ErrorSamples[k.String()] = msg
	}
	st.mu.Unlock()
	if responses == 0 {
		return
	}
	r.Latency = Latency{
		Mean: time.Duration(sumNS / responses),
		P50:  percentile(&hist, responses, 0.50, maxNS),
		P90:  percentile(&hist, responses, 0.90, maxNS),
		P95:  percentile(&hist, responses, 0.95, maxNS),
		P99:  percentile(&hist, responses, 0.99, maxNS),
		Max:  time.Duration(maxNS),
	}
}

// percentile is the value of the smallest bucket whose cumulative count reaches q of the total,
// never more than the exact maximum.
func percentile(hist *[numBuckets]uint64, total uint64, q float64, maxNS uint64) time.Duration {
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range hist {
		seen += hist[i]
		if seen >= rank {
			return time.Duration(min(bucketValue(i), maxNS))
		}
	}
	return time.Duration(maxNS)
}
