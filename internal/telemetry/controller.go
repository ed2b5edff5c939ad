package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The controller's own health, beyond Flagger's per-canary series: how many releases are in flight
// (here) and how late analysis steps run (Recorder.ObserveStepLateness). controller-runtime adds the
// work queue's depth and latencies (workqueue_depth, workqueue_queue_duration_seconds,
// workqueue_work_duration_seconds with name="canary") to the same registry.

// phaseCollector reports pennant_canaries{phase}, pennant_releases_in_flight and
// pennant_releases_queued from the canaries in the controller's cache, counted when Prometheus scrapes: no API request, and nothing to keep
// in step with the canaries' lifecycle.
type phaseCollector struct {
	cache                    client.Reader
	canaries, flight, queued *prometheus.Desc
}

// RegisterPhaseCollector registers the collector of the canaries of cache (the manager's cached
// client; with sharding, the shard's canaries only).
func RegisterPhaseCollector(reg prometheus.Registerer, cache client.Reader) error {
	return reg.Register(&phaseCollector{
		cache:    cache,
		canaries: prometheus.NewDesc("pennant_canaries", "Canaries this controller owns, by phase.", []string{"phase"}, nil),
		flight:   prometheus.NewDesc("pennant_releases_in_flight", "Releases under way: canaries Progressing, WaitingPromotion, Promoting or Finalising.", nil, nil),
		queued:   prometheus.NewDesc("pennant_releases_queued", "Releases waiting for a free slot (-max-concurrent-releases).", nil, nil),
	})
}

func (c *phaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.canaries
	ch <- c.flight
	ch <- c.queued
}

func (c *phaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list flaggerv1.CanaryList
	// Read only: the cache's objects are counted, not copied.
	if err := c.cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return // the cache is not synced yet: no series rather than a failed scrape
	}
	phases := map[flaggerv1.CanaryPhase]int{}
	flight, queued := 0, 0
	for i := range list.Items {
		st := &list.Items[i].Status
		phases[st.Phase]++
		if st.ReleaseInFlight() {
			flight++
		}
		if st.ReleaseQueued() {
			queued++
		}
	}
	for ph, n := range phases {
		label := string(ph)
		if label == "" {
			label = "New"
		}
		ch <- prometheus.MustNewConstMetric(c.canaries, prometheus.GaugeValue, float64(n), label)
	}
	ch <- prometheus.MustNewConstMetric(c.flight, prometheus.GaugeValue, float64(flight))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(queued))
}
