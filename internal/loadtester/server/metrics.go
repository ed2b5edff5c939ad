package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// taskMetrics are the load tester's task metrics on /metrics.
type taskMetrics struct {
	tasks    *prometheus.CounterVec
	running  prometheus.Gauge
	duration *prometheus.HistogramVec
}

func newTaskMetrics(reg prometheus.Registerer) (*taskMetrics, error) {
	m := &taskMetrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pennant_loadtester_tasks_total",
			Help: "Tasks submitted to the load tester by type and outcome (succeeded, failed, skipped as already running, or refused_<status>).",
		}, []string{"type", "outcome"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pennant_loadtester_running_tasks",
			Help: "Tasks running now.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pennant_loadtester_task_duration_seconds",
			Help:    "How long tasks ran, by type.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"type"}),
	}
	for _, c := range []prometheus.Collector{m.tasks, m.running, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *taskMetrics) outcome(typ, outcome string) { m.tasks.WithLabelValues(typ, outcome).Inc() }

func (m *taskMetrics) refused(typ string, status int) {
	m.tasks.WithLabelValues(knownType(typ), "refused_"+strconv.Itoa(status)).Inc()
}

// knownType keeps the type label bounded: a payload's unknown type is "unknown".
func knownType(typ string) string {
	switch typ {
	case TypeCmd, TypeBash, TypeHelm, TypeHelmv3, TypeKubectl, TypeGRPC, TypeConcord, TypeNGrinder:
		return typ
	}
	return "unknown"
}
