package metrics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Keptn's metrics operator (metrics.keptn.sh/v1beta1, the version Flagger uses). The template's
// query names the object to read, as in Flagger:
//
//	keptnmetric/<namespace>/<name>                          the KeptnMetric's status.value
//	analysis/<namespace>/<definition>[/<timeframe>[/<args>]] 1 if an Analysis of the
//	                                                         AnalysisDefinition passes, else 0
//
// "keptnmetrics" and "analyses" are accepted too. <timeframe> is the Analysis's spec.timeframe.recent
// (a Go duration, 1m by default) and <args> its spec.args, as key=value pairs separated by ';'.
// For an analysis the provider creates an Analysis, waits (within Options.Timeout) until the
// operator completes it and deletes it.
//
// Like Flagger, the query is case-insensitive (names, timeframe and arg keys are lowercased),
// except the arg values, which are passed as written (Flagger lowercases them too).

// keptnGroupVersion is the API version of Keptn's metrics objects that Pennant reads and writes.
var keptnGroupVersion = schema.GroupVersion{Group: "metrics.keptn.sh", Version: "v1beta1"}

var (
	keptnMetricGVK   = keptnGroupVersion.WithKind("KeptnMetric")
	keptnAnalysisGVK = keptnGroupVersion.WithKind("Analysis")
)

const (
	// keptnDefaultTimeframe is an Analysis's timeframe when the query names none (Flagger's).
	keptnDefaultTimeframe = "1m"
	// keptnPollInterval is how often the Analysis's status is read while waiting (the client
	// reads through the manager's cache in production, so polling costs no API request).
	keptnPollInterval = 250 * time.Millisecond
	// keptnCleanupTimeout bounds the deletion of a created Analysis.
	keptnCleanupTimeout = 5 * time.Second
	// keptnAnalysisCompleted is the state of an Analysis whose result is final.
	keptnAnalysisCompleted = "Completed"

	keptnQueryFormat = "keptnmetric/<namespace>/<name> or analysis/<namespace>/<analysis definition>[/<timeframe>[/<key>=<value>;...]]"
)

type keptnProvider struct {
	kube    client.Client
	timeout time.Duration
	poll    time.Duration
	// only is Options.OnlyNamespace.
	only string
}

func newKeptn(_ flaggerv1.MetricTemplateProvider, opts Options) (*keptnProvider, error) {
	if opts.Kube == nil {
		return nil, fmt.Errorf("%s: no Kubernetes client to read Keptn's objects with", TypeKeptn)
	}
	return &keptnProvider{kube: opts.Kube, timeout: opts.Timeout, poll: keptnPollInterval, only: opts.OnlyNamespace}, nil
}

// keptnQuery is a parsed keptn query.
type keptnQuery struct {
	analysis  bool // an Analysis of an AnalysisDefinition, else a KeptnMetric
	namespace string
	name      string
	timeframe string            // analysis only
	args      map[string]string // analysis only
}

// parseKeptnQuery parses the query; any part it does not understand is an error, not ignored.
func parseKeptnQuery(query string) (keptnQuery, error) {
	fail := func(format string, a ...any) (keptnQuery, error) {
		return keptnQuery{}, fmt.Errorf("malformed query %q: %s; want %s", query, fmt.Sprintf(format, a...), keptnQueryFormat)
	}
	parts := strings.Split(strings.TrimSpace(query), "/")
	var q keptnQuery
	switch strings.ToLower(parts[0]) {
	case "keptnmetric", "keptnmetrics":
		if len(parts) != 3 {
			return fail("a keptnmetric query has 3 parts, not %d", len(parts))
		}
	case "analysis", "analyses":
		if len(parts) < 3 || len(parts) > 5 {
			return fail("an analysis query has 3 to 5 parts, not %d", len(parts))
		}
		q.analysis = true
	default:
		return fail("unknown kind %q", parts[0])
	}
	q.namespace, q.name = strings.ToLower(parts[1]), strings.ToLower(parts[2])
	if q.namespace == "" || q.name == "" {
		return fail("the namespace and the name must not be empty")
	}
	if !q.analysis {
		return q, nil
	}
	q.timeframe = keptnDefaultTimeframe
	if len(parts) > 3 && parts[3] != "" {
		q.timeframe = strings.ToLower(parts[3])
	}
	if d, err := time.ParseDuration(q.timeframe); err != nil || d <= 0 {
		return fail("timeframe %q is not a positive duration such as 5m", q.timeframe)
	}
	q.args = map[string]string{}
	if len(parts) > 4 && parts[4] != "" {
		for _, pair := range strings.Split(parts[4], ";") {
			key, value, ok := strings.Cut(pair, "=")
			if !ok || key == "" {
				return fail("argument %q is not key=value", pair)
			}
			q.args[strings.ToLower(key)] = value
		}
	}
	return q, nil
}

func (p *keptnProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	q, err := parseKeptnQuery(query)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", TypeKeptn, err)
	}
	if p.only != "" && q.namespace != p.only {
		return 0, fmt.Errorf("%s: query %q names namespace %s: -no-cross-namespace-refs allows only the canary's, %s", TypeKeptn, query, q.namespace, p.only)
	}
	if q.analysis {
		return p.runAnalysis(ctx, q)
	}
	return p.metricValue(ctx, q)
}

// metricValue is the KeptnMetric's status.value. A metric the operator has not fetched yet has no
// value: ErrNoValuesFound, with the operator's error when it reports one.
func (p *keptnProvider) metricValue(ctx context.Context, q keptnQuery) (float64, error) {
	ref := fmt.Sprintf("KeptnMetric %s/%s", q.namespace, q.name)
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(keptnMetricGVK)
	if err := p.kube.Get(ctx, types.NamespacedName{Namespace: q.namespace, Name: q.name}, obj); err != nil {
		return 0, fmt.Errorf("%s: reading %s: %w", TypeKeptn, ref, explainKeptnAPIError(err))
	}
	value, _, _ := unstructured.NestedString(obj.Object, "status", "value")
	if value == "" {
		reason := "the metrics operator has not fetched it yet"
		if msg, _, _ := unstructured.NestedString(obj.Object, "status", "errMsg"); msg != "" {
			reason = "the metrics operator reports: " + msg
		}
		return 0, fmt.Errorf("%s: %s has no status.value (%s): %w", TypeKeptn, ref, reason, ErrNoValuesFound)
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: status.value %q is not a number", TypeKeptn, ref, value)
	}
	return v, nil
}

// runAnalysis creates an Analysis of the AnalysisDefinition, waits until Keptn's operator completes
// it and returns 1 when it passes, 0 when it fails; the Analysis is deleted in every case.
func (p *keptnProvider) runAnalysis(ctx context.Context, q keptnQuery) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	analysis := newKeptnAnalysis(q)
	if err := p.kube.Create(ctx, analysis); err != nil {
		return 0, fmt.Errorf("%s: creating an Analysis of AnalysisDefinition %s/%s: %w", TypeKeptn, q.namespace, q.name, explainKeptnAPIError(err))
	}
	defer p.deleteAnalysis(ctx, analysis)
	ref := fmt.Sprintf("Analysis %s/%s (AnalysisDefinition %s)", analysis.GetNamespace(), analysis.GetName(), q.name)
	state := "none yet"
	tick := time.NewTicker(p.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: %s did not complete within %s (state: %s): is Keptn's metrics operator running?", TypeKeptn, ref, p.timeout, state)
		case <-tick.C:
		}
		current := &unstructured.Unstructured{}
		current.SetGroupVersionKind(keptnAnalysisGVK)
		err := p.kube.Get(ctx, client.ObjectKeyFromObject(analysis), current)
		switch {
		case apierrors.IsNotFound(err):
			continue // a cached client may not have seen the new Analysis yet
		case err != nil && ctx.Err() != nil:
			continue // the deadline ends the wait, with its own message
		case err != nil:
			return 0, fmt.Errorf("%s: reading %s: %w", TypeKeptn, ref, err)
		}
		if s, _, _ := unstructured.NestedString(current.Object, "status", "state"); s != "" {
			state = s
		}
		if state != keptnAnalysisCompleted {
			continue
		}
		// status.pass is omitted when false (the operator's field is `json:"pass,omitempty"`).
		if pass, _, _ := unstructured.NestedBool(current.Object, "status", "pass"); pass {
			return 1, nil
		}
		return 0, nil
	}
}

// newKeptnAnalysis is the Analysis of a query, named after its AnalysisDefinition.
func newKeptnAnalysis(q keptnQuery) *unstructured.Unstructured {
	args := map[string]any{}
	for k, v := range q.args {
		args[k] = v
	}
	analysis := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"analysisDefinition": map[string]any{"name": q.name},
			"timeframe":          map[string]any{"recent": q.timeframe},
			"args":               args,
		},
	}}
	analysis.SetGroupVersionKind(keptnAnalysisGVK)
	analysis.SetNamespace(q.namespace)
	analysis.SetGenerateName(q.name + "-")
	analysis.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "flagger"})
	return analysis
}

// deleteAnalysis deletes a created Analysis, even when the query's context has ended.
func (p *keptnProvider) deleteAnalysis(ctx context.Context, analysis *unstructured.Unstructured) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keptnCleanupTimeout)
	defer cancel()
	if err := p.kube.Delete(ctx, analysis, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
		log.FromContext(ctx).Error(err, "deleting a keptn Analysis", "analysis", client.ObjectKeyFromObject(analysis))
	}
}

// IsOnline checks that the API server serves Keptn's metrics.keptn.sh/v1beta1 objects (Flagger
// always answers true).
func (p *keptnProvider) IsOnline(context.Context) (bool, error) {
	for _, gvk := range []schema.GroupVersionKind{keptnMetricGVK, keptnAnalysisGVK} {
		if _, err := p.kube.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return false, fmt.Errorf("%s: %w", TypeKeptn, explainKeptnAPIError(err))
		}
	}
	return true, nil
}

// explainKeptnAPIError says when the error means that Keptn's CRDs are not installed.
func explainKeptnAPIError(err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("%w (the %s API is not served: are Keptn's metrics operator and its CRDs installed?)", err, keptnGroupVersion)
	}
	return err
}
