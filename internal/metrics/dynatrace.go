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

// Dynatrace Metrics API v2:
// https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points
const (
	dynatraceQueryPath    = "/api/v2/metrics/query"
	dynatraceValidatePath = "/api/v2/metrics"

	dynatraceTokenSecretKey = "dynatrace_token"

	// The query window is 10 metric intervals, like Flagger.
	dynatraceWindowIntervals = 10
)

type dynatraceProvider struct {
	client  *http.Client
	base    *url.URL
	headers map[string][]string
	token   string
	window  time.Duration
	timeout time.Duration
	now     func() time.Time
}

func newDynatrace(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*dynatraceProvider, error) {
	if spec.Address == "" {
		return nil, fmt.Errorf("%s: no address: set spec.provider.address to the environment URL (https://<env-id>.live.dynatrace.com)", TypeDynatrace)
	}
	base, err := baseURL(TypeDynatrace, spec.Address)
	if err != nil {
		return nil, err
	}
	token, err := credential(TypeDynatrace, credentials, dynatraceTokenSecretKey)
	if err != nil {
		return nil, err
	}
	return &dynatraceProvider{
		client:  newHTTPClient(spec.InsecureSkipVerify, opts.Timeout),
		base:    base,
		headers: spec.Headers,
		token:   token,
		window:  dynatraceWindowIntervals * opts.Interval,
		timeout: opts.Timeout,
		now:     time.Now,
	}, nil
}

func (p *dynatraceProvider) get(ctx context.Context, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: building the request: %w", TypeDynatrace, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Api-Token "+p.token)
	body, err := doRequest(ctx, p.client, p.timeout, TypeDynatrace, req)
	if err != nil {
		return nil, dynatraceErrorMessage(err)
	}
	return body, nil
}

// dynatraceErrorMessage adds the message of a {"error":{"code":…,"message":…}} body.
func dynatraceErrorMessage(err error) error {
	var se *StatusError
	if !errors.As(err, &se) {
		return err
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(se.Body), &e) == nil && e.Error.Message != "" {
		return fmt.Errorf("%w (%s)", err, e.Error.Message)
	}
	return err
}

type dynatraceResponse struct {
	Result []struct {
		MetricID string `json:"metricId"`
		Data     []struct {
			Dimensions []string   `json:"dimensions"`
			Values     []*float64 `json:"values"`
		} `json:"data"`
	} `json:"result"`
}

// RunQuery queries the metric selector over the last 10 intervals with resolution Inf (one
// value per series) and returns the value of the single series. No series or only null values
// is ErrNoValuesFound; several metrics or several dimension tuples are ErrMultipleValuesReturned
// (Flagger took the last series of the first metric).
func (p *dynatraceProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	now := p.now()
	u := endpoint(p.base, dynatraceQueryPath)
	q := url.Values{}
	q.Set("metricSelector", query)
	q.Set("resolution", "Inf")
	q.Set("from", strconv.FormatInt(now.Add(-p.window).UnixMilli(), 10))
	q.Set("to", strconv.FormatInt(now.UnixMilli(), 10))
	u.RawQuery = q.Encode()
	body, err := p.get(ctx, u)
	if err != nil {
		return 0, err
	}
	var res dynatraceResponse
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("%s: decoding the query response: %w: %s", TypeDynatrace, err, truncate(string(body)))
	}
	switch len(res.Result) {
	case 0:
		return 0, fmt.Errorf("%s: metric selector %q: %w", TypeDynatrace, query, ErrNoValuesFound)
	case 1:
	default:
		return 0, fmt.Errorf("%s: metric selector %q: %w: %d metrics returned", TypeDynatrace, query, ErrMultipleValuesReturned, len(res.Result))
	}
	data := res.Result[0].Data
	switch len(data) {
	case 0:
		return 0, fmt.Errorf("%s: metric selector %q: %w", TypeDynatrace, query, ErrNoValuesFound)
	case 1:
	default:
		return 0, fmt.Errorf("%s: metric selector %q: %w: %d series returned; aggregate the dimensions (e.g. :splitBy())", TypeDynatrace, query, ErrMultipleValuesReturned, len(data))
	}
	values := data[0].Values
	for i := len(values) - 1; i >= 0; i-- {
		if values[i] != nil {
			return *values[i], nil
		}
	}
	return 0, fmt.Errorf("%s: metric selector %q: %w: only null values", TypeDynatrace, query, ErrNoValuesFound)
}

// IsOnline lists one metric descriptor with the token.
func (p *dynatraceProvider) IsOnline(ctx context.Context) (bool, error) {
	u := endpoint(p.base, dynatraceValidatePath)
	u.RawQuery = "pageSize=1"
	if _, err := p.get(ctx, u); err != nil {
		return false, err
	}
	return true, nil
}
