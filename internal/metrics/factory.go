package metrics

import (
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Provider types accepted in MetricTemplate spec.provider.type.
const (
	TypePrometheus      = "prometheus"
	TypeDatadog         = "datadog"
	TypeNewRelic        = "newrelic"
	TypeGraphite        = "graphite"
	TypeInfluxDB        = "influxdb"
	TypeDynatrace       = "dynatrace"
	TypeSplunk          = "splunk"
	TypeCloudWatch      = "cloudwatch"
	TypeStackdriver     = "stackdriver"
	TypeExternalMetrics = "externalmetrics"
	TypeKeptn           = "keptn"
)

// ErrUnsupportedProvider is returned by New for an unknown or unsupported provider type.
// Unlike Flagger, which silently falls back to Prometheus, Pennant reports it.
var ErrUnsupportedProvider = errors.New("unsupported metric provider")

// defaultInterval is the metric interval assumed when Options.Interval is unset (Flagger's
// default for spec.analysis.metrics[].interval).
const defaultInterval = time.Minute

// Options tunes a provider. The zero value gives Flagger's behaviour.
type Options struct {
	// Timeout bounds every call to the backend (connection, request and reading the answer); for
	// a keptn analysis, the whole wait for Keptn's result. Zero means 5s.
	Timeout time.Duration
	// Interval is the canary metric's interval. Providers whose queries need a time window take
	// it from Interval like Flagger: datadog, dynatrace, splunk and cloudwatch look back
	// 10×Interval, newrelic 1×Interval. Zero means 1m.
	Interval time.Duration
	// AllowAmbientCredentials (-enable-ambient-cloud-credentials) lets a stackdriver or
	// cloudwatch template whose secret has no credentials use the controller's own cloud
	// identity: the GKE / GCE metadata server token, or the AWS environment variables, IRSA web
	// identity or container credentials. Even then they are sent only to the vendor's API over
	// HTTPS with certificate verification: monitoring.googleapis.com, and for CloudWatch
	// monitoring[-fips].<region>.amazonaws.com(.cn) or the region's monitoring VPC endpoints.
	// False (the default): such a template is an error and nothing is sent anywhere.
	AllowAmbientCredentials bool
	// Kube is the controller's Kubernetes client, which the keptn provider reads KeptnMetrics and
	// creates, reads and deletes Analyses with (in production the manager's client, reading
	// through its cache). Nil: a keptn template is an error.
	Kube client.Client
	// OnlyNamespace, when set (-no-cross-namespace-refs), is the only namespace a keptn query may
	// name: the canary's. Keptn's objects of other namespaces are neither read nor created.
	OnlyNamespace string

	// ambientTestHost is a host:port that this package's tests let stand for the vendor's API
	// (a loopback httptest server); production code never sets it.
	ambientTestHost string
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Interval <= 0 {
		o.Interval = defaultInterval
	}
	return o
}

// New builds the provider named by spec.Type with default Options. defaultAddress is used by
// the prometheus provider when spec.Address is empty (the -metrics-server flag or the canary's
// metricsServer); the other providers ignore it. credentials is the data of the Secret named by
// spec.SecretRef (nil when there is none). A missing required credential is an error naming the
// secret key; an unknown type is an error wrapping ErrUnsupportedProvider.
func New(spec flaggerv1.MetricTemplateProvider, defaultAddress string, credentials map[string][]byte) (Provider, error) {
	return NewWithOptions(spec, defaultAddress, credentials, Options{})
}

// NewWithOptions is New with explicit Options.
func NewWithOptions(spec flaggerv1.MetricTemplateProvider, defaultAddress string, credentials map[string][]byte, opts Options) (Provider, error) {
	opts = opts.withDefaults()
	switch spec.Type {
	case TypePrometheus:
		return built(newPrometheus(spec, defaultAddress, credentials, opts))
	case TypeDatadog:
		return built(newDatadog(spec, credentials, opts))
	case TypeNewRelic:
		return built(newNewRelic(spec, credentials, opts))
	case TypeGraphite:
		return built(newGraphite(spec, credentials, opts))
	case TypeInfluxDB:
		return built(newInfluxDB(spec, credentials, opts))
	case TypeDynatrace:
		return built(newDynatrace(spec, credentials, opts))
	case TypeSplunk:
		return built(newSplunk(spec, credentials, opts))
	case TypeCloudWatch:
		return built(newCloudWatch(spec, credentials, opts))
	case TypeStackdriver:
		return built(newStackdriver(spec, credentials, opts))
	case TypeExternalMetrics:
		return built(newExternalMetrics(spec, credentials, opts))
	case TypeKeptn:
		return built(newKeptn(spec, opts))
	case "":
		return nil, fmt.Errorf("%w: spec.provider.type is empty", ErrUnsupportedProvider)
	default:
		return nil, fmt.Errorf("%w: unknown provider type %q", ErrUnsupportedProvider, spec.Type)
	}
}

// built converts a constructor's concrete result to a Provider without turning a nil pointer
// into a non-nil interface.
func built[T Provider](p T, err error) (Provider, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}
