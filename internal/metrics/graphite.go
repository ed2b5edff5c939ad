package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Graphite render API: https://graphite.readthedocs.io/en/latest/render_api.html
// The template query is the render URL's query string, e.g.
// `target=summarize(sumSeries(app.*.errors),'5min','sum')&from=-5min`.

const graphiteOnlineQuery = "target=test"

type graphiteProvider struct {
	client  *http.Client
	base    *url.URL
	headers map[string][]string
	auth    func(*http.Request)
	timeout time.Duration
}

func newGraphite(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*graphiteProvider, error) {
	if spec.Address == "" {
		return nil, fmt.Errorf("%s: no address: set spec.provider.address", TypeGraphite)
	}
	base, err := baseURL(TypeGraphite, spec.Address)
	if err != nil {
		return nil, err
	}
	auth, err := tokenOrBasicAuth(TypeGraphite, spec, credentials, false)
	if err != nil {
		return nil, err
	}
	return &graphiteProvider{
		client:  newHTTPClient(spec.InsecureSkipVerify, opts.Timeout),
		base:    base,
		headers: spec.Headers,
		auth:    auth,
		timeout: opts.Timeout,
	}, nil
}

// graphitePoint is a [value, timestamp] pair; the value may be null, a number or a string.
type graphitePoint struct {
	Value *float64
}

func (p *graphitePoint) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("datapoint %s is not a [value, timestamp] pair", b)
	}
	var v any
	if err := json.Unmarshal(pair[0], &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
	case float64:
		p.Value = &x
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return fmt.Errorf("datapoint value %q: %w", x, err)
		}
		p.Value = &f
	default:
		return fmt.Errorf("datapoint value %s is not a number", pair[0])
	}
	return nil
}

type graphiteSeries struct {
	Target     string          `json:"target"`
	Datapoints []graphitePoint `json:"datapoints"`
}

// RunQuery renders the targets as JSON and returns the last non-null datapoint of the one
// series that has data. Series with only nulls are ignored; several series with data are
// ErrMultipleValuesReturned (Flagger took the last value of the last series).
func (p *graphiteProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	q := collapseWhitespace(query)
	params, err := url.ParseQuery(q)
	if err != nil {
		return 0, fmt.Errorf("%s: the query %q is not a render URL query string (target=…&from=…): %w", TypeGraphite, q, err)
	}
	params.Set("format", "json")
	u := endpoint(p.base, "/render")
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("%s: building the request: %w", TypeGraphite, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Accept", "application/json")
	p.auth(req)
	body, err := doRequest(ctx, p.client, p.timeout, TypeGraphite, req)
	if err != nil {
		return 0, err
	}
	var series []graphiteSeries
	if err := json.Unmarshal(body, &series); err != nil {
		return 0, fmt.Errorf("%s: decoding the render response: %w: %s", TypeGraphite, err, truncate(string(body)))
	}
	var (
		value   *float64
		targets []string
	)
	for _, s := range series {
		var last *float64
		for _, dp := range s.Datapoints {
			if dp.Value != nil {
				last = dp.Value
			}
		}
		if last != nil {
			value = last
			targets = append(targets, s.Target)
		}
	}
	switch len(targets) {
	case 0:
		return 0, fmt.Errorf("%s: query %q: %w", TypeGraphite, q, ErrNoValuesFound)
	case 1:
		return *value, nil
	default:
		return 0, fmt.Errorf("%s: query %q: %w: %d series have data %q", TypeGraphite, q, ErrMultipleValuesReturned, len(targets), targets)
	}
}

// IsOnline renders a dummy target: an answer without data is fine, an HTTP error is not.
func (p *graphiteProvider) IsOnline(ctx context.Context) (bool, error) {
	_, err := p.RunQuery(ctx, graphiteOnlineQuery)
	if err != nil && !errors.Is(err, ErrNoValuesFound) && !errors.Is(err, ErrMultipleValuesReturned) {
		return false, err
	}
	return true, nil
}
