package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// New Relic Insights query API (NRQL over REST):
// https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/
const (
	newRelicDefaultAddress = "https://insights-api.newrelic.com"

	newRelicAccountIDSecretKey = "newrelic_account_id"
	newRelicQueryKeySecretKey  = "newrelic_query_key"

	newRelicOnlineQuery = "SELECT count(*) FROM Metric"
)

type newRelicProvider struct {
	client   *http.Client
	endpoint *url.URL // <address>/v1/accounts/<id>/query
	headers  map[string][]string
	queryKey string
	since    time.Duration
	timeout  time.Duration
}

func newNewRelic(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*newRelicProvider, error) {
	address := spec.Address
	if address == "" {
		address = newRelicDefaultAddress
	}
	base, err := baseURL(TypeNewRelic, address)
	if err != nil {
		return nil, err
	}
	account, err := credential(TypeNewRelic, credentials, newRelicAccountIDSecretKey)
	if err != nil {
		return nil, err
	}
	key, err := credential(TypeNewRelic, credentials, newRelicQueryKeySecretKey)
	if err != nil {
		return nil, err
	}
	return &newRelicProvider{
		client:   newHTTPClient(spec.InsecureSkipVerify, opts.Timeout),
		endpoint: endpoint(base, "/v1/accounts/"+url.PathEscape(account)+"/query"),
		headers:  spec.Headers,
		queryKey: key,
		since:    opts.Interval,
		timeout:  opts.Timeout,
	}, nil
}

// run sends NRQL with Flagger's " SINCE <interval> seconds ago" suffix.
func (p *newRelicProvider) run(ctx context.Context, nrql string) ([]byte, error) {
	u := *p.endpoint
	q := url.Values{}
	q.Set("nrql", fmt.Sprintf("%s SINCE %d seconds ago", nrql, int64(p.since.Seconds())))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: building the request: %w", TypeNewRelic, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Query-Key", p.queryKey)
	return doRequest(ctx, p.client, p.timeout, TypeNewRelic, req)
}

type newRelicResponse struct {
	Results []json.RawMessage `json:"results"`
	Facets  []struct {
		Name    json.RawMessage   `json:"name"`
		Results []json.RawMessage `json:"results"`
	} `json:"facets"`
	TimeSeries []json.RawMessage `json:"timeSeries"`
	Error      string            `json:"error"`
}

// RunQuery runs the NRQL query over the last interval and returns its single value. The value
// is the `result` field (Flagger's convention: `SELECT … AS result` or an arithmetic
// expression), or the only field of the result (`average`, `percentile.95`, …). FACET and
// TIMESERIES answers and several results are ErrMultipleValuesReturned; null is ErrNoValuesFound.
func (p *newRelicProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	body, err := p.run(ctx, query)
	if err != nil {
		return 0, err
	}
	var res newRelicResponse
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("%s: decoding the query response: %w: %s", TypeNewRelic, err, truncate(string(body)))
	}
	if res.Error != "" {
		return 0, fmt.Errorf("%s: query %q failed: %s", TypeNewRelic, query, res.Error)
	}
	results := res.Results
	switch {
	case len(res.TimeSeries) > 0:
		return 0, fmt.Errorf("%s: query %q: %w: TIMESERIES returned %d buckets", TypeNewRelic, query, ErrMultipleValuesReturned, len(res.TimeSeries))
	case len(res.Facets) > 1:
		return 0, fmt.Errorf("%s: query %q: %w: FACET returned %d groups", TypeNewRelic, query, ErrMultipleValuesReturned, len(res.Facets))
	case len(res.Facets) == 1:
		results = res.Facets[0].Results
	}
	switch len(results) {
	case 0:
		return 0, fmt.Errorf("%s: query %q: %w", TypeNewRelic, query, ErrNoValuesFound)
	case 1:
	default:
		return 0, fmt.Errorf("%s: query %q: %w: %d results returned", TypeNewRelic, query, ErrMultipleValuesReturned, len(results))
	}
	v, err := newRelicNumber(results[0])
	if err != nil {
		return 0, fmt.Errorf("%s: query %q: %w", TypeNewRelic, query, err)
	}
	return v, nil
}

// newRelicNumber digs the one number out of a result object.
func newRelicNumber(raw json.RawMessage) (float64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, ErrNoValuesFound
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return 0, fmt.Errorf("the result %s is not a number", truncate(string(raw)))
	}
	if r, ok := obj["result"]; ok {
		return newRelicNumber(r)
	}
	switch len(obj) {
	case 0:
		return 0, ErrNoValuesFound
	case 1:
		for _, v := range obj {
			return newRelicNumber(v)
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return 0, fmt.Errorf("%w: the result has %d fields %v; select one value (or name it `result`)", ErrMultipleValuesReturned, len(obj), keys)
}

// IsOnline runs a trivial NRQL query; any 2xx answer means the account and key work.
func (p *newRelicProvider) IsOnline(ctx context.Context) (bool, error) {
	if _, err := p.run(ctx, newRelicOnlineQuery); err != nil {
		return false, err
	}
	return true, nil
}
