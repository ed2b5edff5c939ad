package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Kubernetes external metrics API (served by KEDA, prometheus-adapter, …):
// GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>?labelSelector=<selector>
//
// The template query is `<namespace>/<metric>?labelSelector=<url-encoded selector>`, like
// Flagger: the namespace defaults to "default" and the selector is optional.
// The address is the API server; without one the in-cluster configuration is used. The secret
// key `token` replaces the service-account token.

const (
	externalMetricsAPIPath = "/apis/external.metrics.k8s.io/v1beta1"

	externalMetricsTokenSecretKey = "token"
)

// inClusterConfig is rest.InClusterConfig, replaceable in tests.
var inClusterConfig = rest.InClusterConfig

type externalMetricsProvider struct {
	client  *http.Client
	base    *url.URL
	headers map[string][]string
	timeout time.Duration
}

func newExternalMetrics(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*externalMetricsProvider, error) {
	cfg, inClusterErr := inClusterConfig()
	switch {
	case spec.Address != "":
		if inClusterErr != nil || cfg == nil {
			cfg = &rest.Config{}
		}
		cfg.Host = spec.Address
	case inClusterErr != nil:
		return nil, fmt.Errorf("%s: no address and no in-cluster configuration: %w", TypeExternalMetrics, inClusterErr)
	}
	if token := optionalCredential(credentials, externalMetricsTokenSecretKey); token != "" {
		cfg.BearerToken, cfg.BearerTokenFile = token, ""
	}
	if spec.InsecureSkipVerify {
		cfg.Insecure, cfg.CAData, cfg.CAFile = true, nil, ""
	}
	cfg.Timeout = opts.Timeout
	base, err := baseURL(TypeExternalMetrics, cfg.Host)
	if err != nil {
		return nil, err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: building the API server client: %w", TypeExternalMetrics, err)
	}
	return &externalMetricsProvider{client: client, base: base, headers: spec.Headers, timeout: opts.Timeout}, nil
}

// parseExternalMetricsQuery splits `<namespace>/<metric>?labelSelector=<selector>`.
func parseExternalMetricsQuery(query string) (namespace, metric string, selector labels.Selector, err error) {
	query = strings.TrimSpace(query)
	path, rawQuery, _ := strings.Cut(query, "?")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	namespace = "default"
	switch len(parts) {
	case 1:
		metric = parts[0]
	case 2:
		if parts[0] != "" {
			namespace = parts[0]
		}
		metric = parts[1]
	default:
		return "", "", nil, fmt.Errorf("malformed query %q: want <namespace>/<metric>?labelSelector=<selector>", query)
	}
	if metric == "" {
		return "", "", nil, fmt.Errorf("malformed query %q: the metric name is empty", query)
	}
	params, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", nil, fmt.Errorf("malformed query %q: %w", query, err)
	}
	selector = labels.Everything()
	if raw := params.Get("labelSelector"); raw != "" {
		if selector, err = labels.Parse(raw); err != nil {
			return "", "", nil, fmt.Errorf("malformed label selector %q: %w", raw, err)
		}
	}
	return namespace, metric, selector, nil
}

type externalMetricValueList struct {
	Items []struct {
		MetricName   string            `json:"metricName"`
		MetricLabels map[string]string `json:"metricLabels"`
		Value        resource.Quantity `json:"value"`
	} `json:"items"`
}

func (p *externalMetricsProvider) get(ctx context.Context, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: building the request: %w", TypeExternalMetrics, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Accept", "application/json")
	body, err := doRequest(ctx, p.client, p.timeout, TypeExternalMetrics, req)
	if err != nil {
		// Failures come as a metav1.Status; surface its message.
		var se *StatusError
		if errors.As(err, &se) {
			var status struct {
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(se.Body), &status) == nil && status.Message != "" {
				return nil, fmt.Errorf("%w (%s)", err, status.Message)
			}
		}
		return nil, err
	}
	return body, nil
}

// RunQuery lists the external metric and returns the value of its single item. No item is
// ErrNoValuesFound; several items are ErrMultipleValuesReturned (Flagger took the first).
func (p *externalMetricsProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	namespace, metric, selector, err := parseExternalMetricsQuery(query)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", TypeExternalMetrics, err)
	}
	u := endpoint(p.base, externalMetricsAPIPath+"/namespaces/"+url.PathEscape(namespace)+"/"+url.PathEscape(metric))
	if !selector.Empty() {
		u.RawQuery = url.Values{"labelSelector": {selector.String()}}.Encode()
	}
	body, err := p.get(ctx, u)
	if err != nil {
		return 0, err
	}
	var list externalMetricValueList
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, fmt.Errorf("%s: decoding the metric list: %w: %s", TypeExternalMetrics, err, truncate(string(body)))
	}
	switch len(list.Items) {
	case 0:
		return 0, fmt.Errorf("%s: metric %s/%s: %w", TypeExternalMetrics, namespace, metric, ErrNoValuesFound)
	case 1:
		return list.Items[0].Value.AsApproximateFloat64(), nil
	default:
		return 0, fmt.Errorf("%s: metric %s/%s: %w: %d items returned; narrow the labelSelector", TypeExternalMetrics, namespace, metric, ErrMultipleValuesReturned, len(list.Items))
	}
}

// IsOnline checks that the API server serves external.metrics.k8s.io/v1beta1 to these
// credentials (the group's discovery document).
func (p *externalMetricsProvider) IsOnline(ctx context.Context) (bool, error) {
	if _, err := p.get(ctx, endpoint(p.base, externalMetricsAPIPath)); err != nil {
		return false, err
	}
	return true, nil
}
