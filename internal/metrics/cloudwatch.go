package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Amazon CloudWatch GetMetricData over the AWS JSON 1.0 protocol, signed with SigV4 (aws.go):
// POST / with X-Amz-Target: GraniteServiceVersion20100801.GetMetricData.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
//
// The template query is the MetricDataQueries JSON array, as in Flagger, e.g.
//
//	[{"Id": "e1", "Expression": "m1 / m2 * 100", "Label": "error rate"},
//	 {"Id": "m1", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "MyApp", "MetricName": "Errors"}, "Period": 60, "Stat": "Sum"}},
//	 {"Id": "m2", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "MyApp", "MetricName": "Requests"}, "Period": 60, "Stat": "Sum"}}]
//
// Field names match case-insensitively, like Flagger's SDK structs.
const (
	cloudWatchTarget        = "GraniteServiceVersion20100801.GetMetricData"
	cloudWatchContentType   = "application/x-amz-json-1.0"
	cloudWatchSigningName   = "monitoring"
	cloudWatchMaxDatapoints = 20

	// The query window is 10 metric intervals, like Flagger.
	cloudWatchWindowIntervals = 10
)

type cloudWatchProvider struct {
	client   *http.Client
	endpoint *url.URL
	region   string
	headers  map[string][]string
	creds    awsCredentialSource
	window   time.Duration
	timeout  time.Duration
	now      func() time.Time
}

func newCloudWatch(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*cloudWatchProvider, error) {
	if spec.Region == "" {
		return nil, fmt.Errorf("%s: no region: set spec.provider.region", TypeCloudWatch)
	}
	address := spec.Address
	if address == "" {
		address = "https://monitoring." + spec.Region + "." + awsDNSSuffix(spec.Region)
	}
	ep, err := baseURL(TypeCloudWatch, address)
	if err != nil {
		return nil, err
	}
	if ep.Path == "" {
		ep.Path = "/"
	}
	client := newHTTPClient(spec.InsecureSkipVerify, opts.Timeout)
	ambient := opts.ambientRefusal(TypeCloudWatch, credentials, strconv.Quote(awsAccessKeyIDSecretKey)+" and "+strconv.Quote(awsSecretAccessKeySecretKey), ep,
		spec.InsecureSkipVerify, "monitoring."+spec.Region+"."+awsDNSSuffix(spec.Region), isAWSMonitoringAPI(spec.Region))
	creds, err := awsCredentialChain(TypeCloudWatch, credentials, spec.Region, client, ambient)
	if err != nil {
		return nil, err
	}
	return &cloudWatchProvider{
		client:   client,
		endpoint: ep,
		region:   spec.Region,
		headers:  spec.Headers,
		creds:    creds,
		window:   cloudWatchWindowIntervals * opts.Interval,
		timeout:  opts.Timeout,
		now:      time.Now,
	}, nil
}

// MetricDataQuery and friends, with the API's member names.
type cloudWatchQuery struct {
	ID         string                `json:"Id"`
	AccountID  string                `json:"AccountId,omitempty"`
	Expression string                `json:"Expression,omitempty"`
	Label      string                `json:"Label,omitempty"`
	MetricStat *cloudWatchMetricStat `json:"MetricStat,omitempty"`
	Period     *int64                `json:"Period,omitempty"`
	ReturnData *bool                 `json:"ReturnData,omitempty"`
}

type cloudWatchMetricStat struct {
	Metric struct {
		Namespace  string `json:"Namespace,omitempty"`
		MetricName string `json:"MetricName,omitempty"`
		Dimensions []struct {
			Name  string `json:"Name"`
			Value string `json:"Value"`
		} `json:"Dimensions,omitempty"`
	} `json:"Metric"`
	Period int64  `json:"Period"`
	Stat   string `json:"Stat"`
	Unit   string `json:"Unit,omitempty"`
}

type cloudWatchRequest struct {
	MetricDataQueries []cloudWatchQuery `json:"MetricDataQueries"`
	StartTime         int64             `json:"StartTime"`
	EndTime           int64             `json:"EndTime"`
	MaxDatapoints     int               `json:"MaxDatapoints,omitempty"`
	ScanBy            string            `json:"ScanBy,omitempty"`
}

type cloudWatchResponse struct {
	MetricDataResults []struct {
		ID         string    `json:"Id"`
		Label      string    `json:"Label"`
		StatusCode string    `json:"StatusCode"`
		Values     []float64 `json:"Values"`
	} `json:"MetricDataResults"`
	Messages []struct {
		Code  string `json:"Code"`
		Value string `json:"Value"`
	} `json:"Messages"`
}

// cloudWatchAPIError is an AWS JSON-protocol error answer.
type cloudWatchAPIError struct {
	status  *StatusError
	Code    string
	Message string
}

func (e *cloudWatchAPIError) Error() string {
	return fmt.Sprintf("%s (%s: %s)", e.status.Error(), e.Code, e.Message)
}
func (e *cloudWatchAPIError) Unwrap() error { return e.status }

// call signs and sends one GetMetricData request.
func (p *cloudWatchProvider) call(ctx context.Context, in cloudWatchRequest) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	creds, err := p.creds.retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: AWS credentials from %s: %w", TypeCloudWatch, p.creds, err)
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the request: %w", TypeCloudWatch, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint.String(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("%s: building the request: %w", TypeCloudWatch, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Content-Type", cloudWatchContentType)
	req.Header.Set("X-Amz-Target", cloudWatchTarget)
	req.Header.Set("Accept", "application/json")
	signAWSv4(req, payload, creds, p.region, cloudWatchSigningName, p.now())
	body, err := doRequest(ctx, p.client, p.timeout, TypeCloudWatch, req)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			if code, msg := parseAWSJSONError(se.Body); code != "" || msg != "" {
				return nil, &cloudWatchAPIError{status: se, Code: code, Message: msg}
			}
		}
		return nil, err
	}
	return body, nil
}

// parseAWSJSONError reads {"__type": "…#Code", "message": "…"} (either case of message).
func parseAWSJSONError(body string) (code, msg string) {
	var e struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return "", ""
	}
	code = e.Type
	if code == "" {
		code = e.Code
	}
	if i := strings.LastIndex(code, "#"); i >= 0 {
		code = code[i+1:]
	}
	code, _, _ = strings.Cut(code, ":")
	msg = e.Message
	if msg == "" {
		msg = e.MessageU
	}
	return code, msg
}

// RunQuery runs the MetricDataQueries over the last 10 intervals and returns the newest value
// of the single returned result (queries with "ReturnData": false feed expressions only).
// No result or no datapoint is ErrNoValuesFound; several returned results are
// ErrMultipleValuesReturned (Flagger took the first).
func (p *cloudWatchProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	dec := json.NewDecoder(strings.NewReader(query))
	dec.DisallowUnknownFields()
	var queries []cloudWatchQuery
	if err := dec.Decode(&queries); err != nil {
		return 0, fmt.Errorf("%s: the query must be a JSON array of MetricDataQuery: %w", TypeCloudWatch, err)
	}
	if len(queries) == 0 {
		return 0, fmt.Errorf("%s: the query has no MetricDataQuery", TypeCloudWatch)
	}
	end := p.now()
	body, err := p.call(ctx, cloudWatchRequest{
		MetricDataQueries: queries,
		StartTime:         end.Add(-p.window).Unix(),
		EndTime:           end.Unix(),
		MaxDatapoints:     cloudWatchMaxDatapoints,
		ScanBy:            "TimestampDescending",
	})
	if err != nil {
		return 0, err
	}
	var res cloudWatchResponse
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("%s: decoding the GetMetricData response: %w: %s", TypeCloudWatch, err, truncate(string(body)))
	}
	results := res.MetricDataResults
	switch len(results) {
	case 0:
		return 0, fmt.Errorf("%s: %w", TypeCloudWatch, ErrNoValuesFound)
	case 1:
	default:
		ids := make([]string, len(results))
		for i, r := range results {
			ids[i] = r.ID
		}
		return 0, fmt.Errorf("%s: %w: %d results returned %v; set \"ReturnData\": false on all queries but one", TypeCloudWatch, ErrMultipleValuesReturned, len(results), ids)
	}
	r := results[0]
	if r.StatusCode == "InternalError" || r.StatusCode == "Forbidden" {
		return 0, fmt.Errorf("%s: result %q has status %s: %v", TypeCloudWatch, r.ID, r.StatusCode, res.Messages)
	}
	if len(r.Values) == 0 {
		return 0, fmt.Errorf("%s: result %q: %w", TypeCloudWatch, r.ID, ErrNoValuesFound)
	}
	return r.Values[0], nil // newest first (TimestampDescending)
}

// awsAuthErrorCodes are error codes of a 400 answer that mean the credentials failed.
var awsAuthErrorCodes = map[string]bool{
	"AccessDenied": true, "AuthFailure": true, "ExpiredToken": true, "IncompleteSignature": true,
	"InvalidClientTokenId": true, "InvalidSignature": true, "MissingAuthenticationToken": true,
	"NotAuthorized": true, "OptInRequired": true, "SignatureDoesNotMatch": true, "UnrecognizedClient": true,
	"RequestExpired": true,
}

// IsOnline calls GetMetricData with no query, like Flagger: the answer must be a validation
// error (the request reached CloudWatch and was authenticated and authorized), not an
// authentication or permission failure.
func (p *cloudWatchProvider) IsOnline(ctx context.Context) (bool, error) {
	end := p.now()
	_, err := p.call(ctx, cloudWatchRequest{
		MetricDataQueries: []cloudWatchQuery{},
		StartTime:         end.Add(-time.Minute).Unix(),
		EndTime:           end.Unix(),
	})
	if err == nil {
		return true, nil
	}
	var apiErr *cloudWatchAPIError
	if errors.As(err, &apiErr) && apiErr.status.StatusCode == http.StatusBadRequest &&
		!awsAuthErrorCodes[strings.TrimSuffix(apiErr.Code, "Exception")] {
		return true, nil
	}
	return false, err
}
