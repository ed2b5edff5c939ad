package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Datadog metrics query API v1: https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points
const (
	datadogDefaultAddress = "https://api.datadoghq.com"
	datadogQueryPath      = "/api/v1/query"
	datadogValidatePath   = "/api/v1/validate"

	datadogAPIKeySecretKey         = "datadog_api_key"
	datadogApplicationKeySecretKey = "datadog_application_key"

	// The query window is 10 metric intervals, like Flagger.
	datadogWindowIntervals = 10
)

type datadogProvider struct {
	client  *http.Client
	base    *url.URL
	headers map[string][]string
	apiKey  string
	appKey  string
	window  time.Duration
	timeout time.Duration
	now     func() time.Time
}

func newDatadog(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*datadogProvider, error) {
	address := spec.Address
	if address == "" {
		address = datadogDefaultAddress
	}
	base, err := baseURL(TypeDatadog, address)
	if err != nil {
		return nil, err
	}
	apiKey, err := credential(TypeDatadog, credentials, datadogAPIKeySecretKey)
	if err != nil {
		return nil, err
	}
	appKey, err := credential(TypeDatadog, credentials, datadogApplicationKeySecretKey)
	if err != nil {
		return nil, err
	}
	return &datadogProvider{
		client:  newHTTPClient(spec.InsecureSkipVerify, opts.Timeout),
		base:    base,
		headers: spec.Headers,
		apiKey:  apiKey,
		appKey:  appKey,
		window:  datadogWindowIntervals * opts.Interval,
		timeout: opts.Timeout,
		now:     time.Now,
	}, nil
}

func (p *datadogProvider) newRequest(ctx context.Context, u *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: building the request: %w", TypeDatadog, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("DD-API-KEY", p.apiKey)
	req.Header.Set("DD-APPLICATION-KEY", p.appKey)
	return req, nil
}

// datadogQueryResponse is the part of the v1 query answer used here.
type datadogQueryResponse struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Series []struct {
		Metric    string        `json:"metric"`
		Scope     string        `json:"scope"`
		Pointlist [][2]*float64 `json:"pointlist"`
	} `json:"series"`
}

// RunQuery queries the last 10 intervals and returns the oldest non-null point of the single
// series. Like Flagger it takes the start of the window: the newest bucket is usually
// incomplete. Several series are an error (Flagger took the first).
func (p *datadogProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	now := p.now()
	u := endpoint(p.base, datadogQueryPath)
	q := url.Values{}
	q.Set("query", query)
	q.Set("from", strconv.FormatInt(now.Add(-p.window).Unix(), 10))
	q.Set("to", strconv.FormatInt(now.Unix(), 10))
	u.RawQuery = q.Encode()
	req, err := p.newRequest(ctx, u)
	if err != nil {
		return 0, err
	}
	body, err := doRequest(ctx, p.client, p.timeout, TypeDatadog, req)
	if err != nil {
		return 0, err
	}
	var res datadogQueryResponse
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("%s: decoding the query response: %w: %s", TypeDatadog, err, truncate(string(body)))
	}
	if res.Status == "error" || res.Error != "" {
		return 0, fmt.Errorf("%s: query %q failed: %s", TypeDatadog, query, res.Error)
	}
	switch len(res.Series) {
	case 0:
		return 0, fmt.Errorf("%s: query %q: %w", TypeDatadog, query, ErrNoValuesFound)
	case 1:
	default:
		return 0, fmt.Errorf("%s: query %q: %w: %d series returned", TypeDatadog, query, ErrMultipleValuesReturned, len(res.Series))
	}
	// The pointlist is in time order: judge the newest non-null point, the state of the canary
	// now, not the oldest of the window.
	points := res.Series[0].Pointlist
	for i := len(points) - 1; i >= 0; i-- {
		if points[i][1] != nil {
			return *points[i][1], nil
		}
	}
	return 0, fmt.Errorf("%s: query %q: %w: the series has no non-null point", TypeDatadog, query, ErrNoValuesFound)
}

// IsOnline validates the API key.
func (p *datadogProvider) IsOnline(ctx context.Context) (bool, error) {
	req, err := p.newRequest(ctx, endpoint(p.base, datadogValidatePath))
	if err != nil {
		return false, err
	}
	body, err := doRequest(ctx, p.client, p.timeout, TypeDatadog, req)
	if err != nil {
		return false, err
	}
	var res struct {
		Valid *bool `json:"valid"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return false, fmt.Errorf("%s: decoding the validate response: %w: %s", TypeDatadog, err, truncate(string(body)))
	}
	if res.Valid != nil && !*res.Valid {
		return false, fmt.Errorf("%s: the API key is not valid", TypeDatadog)
	}
	return true, nil
}
