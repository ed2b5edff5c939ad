package metrics

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Splunk Observability Cloud (SignalFx) SignalFlow.
//
// Flagger uses the SignalFlow WebSocket client. Pennant runs the same computation through the
// SignalFlow HTTP API instead (POST /v2/signalflow/execute, answered as Server-Sent Events):
// one short request per query, no WebSocket dependency, and the same messages (data,
// control-message, error, …). With immediate=true and a stop time the computation ends with an
// END_OF_CHANNEL control message. https://dev.splunk.com/observability/docs/signalflow/
const (
	splunkExecutePath  = "/v2/signalflow/execute"
	splunkValidatePath = "/v2/metric"

	splunkTokenSecretKey = "sf_token_key"

	// The computation window is 10 metric intervals, like Flagger.
	splunkWindowIntervals = 10
)

type splunkProvider struct {
	client  *http.Client
	stream  *url.URL // https://stream.<realm>.signalfx.com
	api     *url.URL // https://api.<realm>.signalfx.com
	headers map[string][]string
	token   string
	window  time.Duration
	timeout time.Duration
	now     func() time.Time
}

func newSplunk(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*splunkProvider, error) {
	if spec.Address == "" {
		return nil, fmt.Errorf("%s: no address: set spec.provider.address (https://api.<realm>.signalfx.com)", TypeSplunk)
	}
	stream, api, err := splunkHosts(spec.Address)
	if err != nil {
		return nil, err
	}
	token, err := credential(TypeSplunk, credentials, splunkTokenSecretKey)
	if err != nil {
		return nil, err
	}
	return &splunkProvider{
		client:  newHTTPClient(spec.InsecureSkipVerify, opts.Timeout),
		stream:  stream,
		api:     api,
		headers: spec.Headers,
		token:   token,
		window:  splunkWindowIntervals * opts.Interval,
		timeout: opts.Timeout,
		now:     time.Now,
	}, nil
}

// splunkHosts derives the stream and API base URLs from the template address, which (as in
// Flagger) may name either: https://api.<realm>.signalfx.com or wss://stream.<realm>.signalfx.com.
// Other hosts (a proxy) serve both.
func splunkHosts(address string) (stream, api *url.URL, err error) {
	u, err := url.Parse(strings.TrimSpace(address))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: address %q is not a valid URL: %w", TypeSplunk, address, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	base, err := baseURL(TypeSplunk, u.String())
	if err != nil {
		return nil, nil, err
	}
	s, a := *base, *base
	switch {
	case strings.HasPrefix(base.Host, "api."):
		s.Host = "stream." + strings.TrimPrefix(base.Host, "api.")
	case strings.HasPrefix(base.Host, "stream."):
		a.Host = "api." + strings.TrimPrefix(base.Host, "stream.")
	}
	return &s, &a, nil
}

// splunkData is the payload of a `data` message.
type splunkData struct {
	LogicalTimestampMs int64 `json:"logicalTimestampMs"`
	Data               []struct {
		TSID  string   `json:"tsId"`
		Value *float64 `json:"value"`
	} `json:"data"`
}

// RunQuery executes the SignalFlow program over the last 10 intervals and returns the latest
// non-null value of the single output time series. No value is ErrNoValuesFound; values from
// several time series are ErrMultipleValuesReturned (as in Flagger).
func (p *splunkProvider) RunQuery(ctx context.Context, program string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	now := p.now()
	u := endpoint(p.stream, splunkExecutePath)
	q := url.Values{}
	q.Set("start", strconv.FormatInt(now.Add(-p.window).UnixMilli(), 10))
	q.Set("stop", strconv.FormatInt(now.UnixMilli(), 10))
	q.Set("immediate", "true")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(program))
	if err != nil {
		return 0, fmt.Errorf("%s: building the request: %w", TypeSplunk, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-SF-Token", p.token)

	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("%s: POST %s: %w", TypeSplunk, redactURL(req.URL), err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody*2))
		return 0, newStatusError(TypeSplunk, resp.StatusCode, body)
	}

	latest := map[string]float64{} // tsId → latest non-null value
	var order []string
	err = readSSE(io.LimitReader(resp.Body, maxResponseBytes), func(event, data string) (bool, error) {
		switch event {
		case "data":
			var d splunkData
			if err := json.Unmarshal([]byte(data), &d); err != nil {
				return false, fmt.Errorf("decoding a data message: %w: %s", err, truncate(data))
			}
			for _, dp := range d.Data {
				if dp.Value == nil {
					continue
				}
				if _, seen := latest[dp.TSID]; !seen {
					order = append(order, dp.TSID)
				}
				latest[dp.TSID] = *dp.Value
			}
		case "error":
			return false, fmt.Errorf("the computation failed: %s", truncate(data))
		case "control-message":
			var c struct {
				Event     string          `json:"event"`
				AbortInfo json.RawMessage `json:"abortInfo"`
			}
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				return false, fmt.Errorf("decoding a control message: %w: %s", err, truncate(data))
			}
			switch c.Event {
			case "END_OF_CHANNEL":
				return true, nil
			case "CHANNEL_ABORT":
				return false, fmt.Errorf("the computation was aborted: %s", truncate(string(c.AbortInfo)))
			}
		}
		return false, nil
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", TypeSplunk, err)
	}
	switch len(order) {
	case 0:
		return 0, fmt.Errorf("%s: %w", TypeSplunk, ErrNoValuesFound)
	case 1:
		return latest[order[0]], nil
	default:
		return 0, fmt.Errorf("%s: %w: %d time series returned values; aggregate the program to one (e.g. .sum())", TypeSplunk, ErrMultipleValuesReturned, len(order))
	}
}

// readSSE calls fn for every Server-Sent Event until fn reports done, fn fails or the stream
// ends. Multi-line data is joined with newlines, as the SSE spec says.
func readSSE(r io.Reader, fn func(event, data string) (done bool, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxResponseBytes)
	var (
		event string
		data  []string
	)
	dispatch := func() (bool, error) {
		if len(data) == 0 {
			event = ""
			return false, nil
		}
		ev := event
		if ev == "" {
			ev = "message"
		}
		d := strings.Join(data, "\n")
		event, data = "", data[:0]
		return fn(ev, d)
	}
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			done, err := dispatch()
			if done || err != nil {
				return err
			}
			continue
		}
		if strings.HasPrefix(line, ":") { // comment / keep-alive
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the event stream: %w", err)
	}
	_, err := dispatch() // a last event without its blank line
	return err
}

// IsOnline lists one metric through the REST API with the token.
func (p *splunkProvider) IsOnline(ctx context.Context) (bool, error) {
	u := endpoint(p.api, splunkValidatePath)
	u.RawQuery = "limit=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, fmt.Errorf("%s: building the request: %w", TypeSplunk, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-SF-Token", p.token)
	if _, err := doRequest(ctx, p.client, p.timeout, TypeSplunk, req); err != nil {
		return false, err
	}
	return true, nil
}
