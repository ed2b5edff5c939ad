// Package podinfo is a small demo application for Pennant's end-to-end traffic tests. It answers like
// stefanprodan/podinfo 6.x where Flagger's tutorials and Pennant's builtin metric checks depend on it
// (port 9898, GET /, /status/{code}, /delay/{seconds}, /healthz, /readyz, /version, /metrics with
// http_request_duration_seconds{method,path,status}), and it injects faults configured from its
// environment so that a change of the pod template makes a bad release.
package podinfo

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvPodName         = "POD_NAME"        // GET /'s hostname and X-Pod-Name (default: HOSTNAME)
	EnvPodNamespace    = "POD_NAMESPACE"   // reported by GET /
	EnvPodIP           = "POD_IP"          // reported by GET /
	EnvVersion         = "PODINFO_VERSION" // set by the supervisor from the image tag; wins over VERSION
	EnvVersionFallback = "VERSION"
	EnvMessage         = "PODINFO_UI_MESSAGE" // podinfo's name for GET /'s message
	EnvErrorRate       = "ERROR_RATE"         // 0..1: fraction of application requests answered 500
	EnvLatency         = "LATENCY"            // Go duration added to every application request
	EnvLatencyJitter   = "LATENCY_JITTER"     // Go duration: up to this much more, uniformly
	EnvShutdownDelay   = "SHUTDOWN_DELAY"     // Go duration served after SIGTERM with /readyz 503 (default 3s)
	EnvShutdownTimeout = "SHUTDOWN_TIMEOUT"   // Go duration allowed for in-flight requests afterwards (default 5s)
	EnvFaultSeed       = "FAULT_SEED"         // uint64 seed of the fault randomness (default: random)
)

// Defaults of Config.
const (
	DefaultShutdownDelay   = 3 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
	DefaultVersion         = "dev"
	DefaultMessage         = "greetings from podinfo"
)

// Config is what the application serves and which faults it injects.
type Config struct {
	// PodName is reported as hostname by GET / and in the X-Pod-Name header of every response.
	PodName string
	// Namespace and PodIP are reported by GET /.
	Namespace, PodIP string
	// Version is reported by GET / and /version and in the X-Version header of every response.
	Version string
	// Message is GET /'s message.
	Message string

	// ErrorRate is the fraction (0..1) of application requests (all but /healthz, /readyz and
	// /metrics) answered 500 instead of their normal answer.
	ErrorRate float64
	// Latency is added to every application request, plus a uniform random part of up to LatencyJitter.
	Latency, LatencyJitter time.Duration
	// Rand decides which requests fail and how much jitter they get. Nil: a randomly seeded source.
	// Seed it for deterministic tests.
	Rand *rand.Rand

	// ShutdownDelay is how long Serve keeps answering after its context ends, with /readyz 503, so
	// that proxies still routing to the terminating pod do not see refused connections.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests after ShutdownDelay.
	ShutdownTimeout time.Duration

	// Draining, once closed, makes /readyz answer 503. Serve closes it when shutdown begins;
	// nil: /readyz always answers 200.
	Draining <-chan struct{}
}

// ConfigFromEnv reads a Config from environment variables (see the Env constants). An invalid value
// is an error naming the variable, so that a bad pod template fails loudly instead of serving defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		PodName:         firstNonEmpty(getenv(EnvPodName), getenv("HOSTNAME")),
		Namespace:       getenv(EnvPodNamespace),
		PodIP:           getenv(EnvPodIP),
		Version:         firstNonEmpty(getenv(EnvVersion), getenv(EnvVersionFallback), DefaultVersion),
		Message:         firstNonEmpty(getenv(EnvMessage), DefaultMessage),
		ShutdownDelay:   DefaultShutdownDelay,
		ShutdownTimeout: DefaultShutdownTimeout,
	}
	var errs []error
	if v := getenv(EnvErrorRate); v != "" {
		rate, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(rate) || rate < 0 || rate > 1 {
			errs = append(errs, fmt.Errorf("%s=%q: want a number from 0 to 1", EnvErrorRate, v))
		}
		cfg.ErrorRate = rate
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{EnvLatency, &cfg.Latency}, {EnvLatencyJitter, &cfg.LatencyJitter},
		{EnvShutdownDelay, &cfg.ShutdownDelay}, {EnvShutdownTimeout, &cfg.ShutdownTimeout},
	}
	for _, d := range durations {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a non-negative Go duration such as 250ms", d.name, v))
			continue
		}
		*d.dst = dur
	}
	if v := getenv(EnvFaultSeed); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want an unsigned integer", EnvFaultSeed, v))
		}
		cfg.Rand = rand.New(rand.NewPCG(seed, seed))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
