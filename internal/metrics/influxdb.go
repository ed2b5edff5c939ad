package metrics

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// InfluxDB 2.x query API (also served by InfluxDB 1.8+ and Cloud):
// POST /api/v2/query?org=<org> with a Flux query, answered in annotated CSV
// (https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/).
// Hand-written so Pennant needs no InfluxDB client library.

const (
	influxTokenSecretKey = "token"
	influxOrgSecretKey   = "org"

	// influxOnlineQuery needs a valid token but no particular bucket (Flagger queried a bucket
	// named "default", which fails wherever that bucket does not exist).
	influxOnlineQuery = "buckets() |> limit(n: 1)"
)

type influxDBProvider struct {
	client  *http.Client
	base    *url.URL
	headers map[string][]string
	token   string
	org     string
	timeout time.Duration
}

func newInfluxDB(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*influxDBProvider, error) {
	if spec.Address == "" {
		return nil, fmt.Errorf("%s: no address: set spec.provider.address", TypeInfluxDB)
	}
	base, err := baseURL(TypeInfluxDB, spec.Address)
	if err != nil {
		return nil, err
	}
	p := &influxDBProvider{
		client:  newHTTPClient(spec.InsecureSkipVerify, opts.Timeout),
		base:    base,
		headers: spec.Headers,
		timeout: opts.Timeout,
	}
	p.token = optionalCredential(credentials, influxTokenSecretKey)
	p.org = optionalCredential(credentials, influxOrgSecretKey)
	if spec.SecretRef != nil { // like Flagger, a named secret must hold both
		if _, err := credential(TypeInfluxDB, credentials, influxTokenSecretKey); err != nil {
			return nil, err
		}
		if _, err := credential(TypeInfluxDB, credentials, influxOrgSecretKey); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// influxQueryRequest is the JSON body of /api/v2/query.
type influxQueryRequest struct {
	Query   string        `json:"query"`
	Type    string        `json:"type"`
	Dialect influxDialect `json:"dialect"`
}

type influxDialect struct {
	Header         bool     `json:"header"`
	Delimiter      string   `json:"delimiter"`
	Annotations    []string `json:"annotations"`
	CommentPrefix  string   `json:"commentPrefix"`
	DateTimeFormat string   `json:"dateTimeFormat"`
}

// query runs Flux and returns the decoded records.
func (p *influxDBProvider) query(ctx context.Context, flux string) ([]influxRecord, error) {
	payload, err := json.Marshal(influxQueryRequest{
		Query: flux,
		Type:  "flux",
		Dialect: influxDialect{
			Header:         true,
			Delimiter:      ",",
			Annotations:    []string{"datatype", "group", "default"},
			CommentPrefix:  "#",
			DateTimeFormat: "RFC3339",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the query: %w", TypeInfluxDB, err)
	}
	u := endpoint(p.base, "/api/v2/query")
	if p.org != "" {
		u.RawQuery = url.Values{"org": {p.org}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("%s: building the request: %w", TypeInfluxDB, err)
	}
	applyHeaders(req, p.headers)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/csv")
	if p.token != "" {
		req.Header.Set("Authorization", "Token "+p.token)
	}
	body, err := doRequest(ctx, p.client, p.timeout, TypeInfluxDB, req)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			// Errors come as {"code":"invalid","message":"…"}; surface the message.
			var e struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(se.Body), &e) == nil && e.Message != "" {
				return nil, fmt.Errorf("%w (%s: %s)", err, e.Code, e.Message)
			}
		}
		return nil, err
	}
	return parseInfluxCSV(body)
}

// RunQuery runs the Flux query and returns the `_value` of its single record. No record or an
// empty value is ErrNoValuesFound; several records (one per table or row) are
// ErrMultipleValuesReturned (Flagger took the first).
func (p *influxDBProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	records, err := p.query(ctx, query)
	if err != nil {
		return 0, err
	}
	switch len(records) {
	case 0:
		return 0, fmt.Errorf("%s: %w: the query returned no record", TypeInfluxDB, ErrNoValuesFound)
	case 1:
	default:
		return 0, fmt.Errorf("%s: %w: the query returned %d records; reduce it to one (e.g. |> group() |> mean())", TypeInfluxDB, ErrMultipleValuesReturned, len(records))
	}
	v, err := records[0].float()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", TypeInfluxDB, err)
	}
	return v, nil
}

// IsOnline runs a query that needs a valid token but no particular bucket.
func (p *influxDBProvider) IsOnline(ctx context.Context) (bool, error) {
	if _, err := p.query(ctx, influxOnlineQuery); err != nil {
		return false, err
	}
	return true, nil
}

// influxRecord is one data row of annotated CSV: the `_value` cell and its annotations.
type influxRecord struct {
	hasValue bool
	value    string
	datatype string
	columns  []string
}

func (r influxRecord) float() (float64, error) {
	if !r.hasValue {
		return 0, fmt.Errorf("the result has no _value column (columns %v)", r.columns)
	}
	if r.value == "" {
		return 0, fmt.Errorf("%w: _value is null", ErrNoValuesFound)
	}
	switch r.datatype {
	case "double", "long", "unsignedLong", "":
		f, err := strconv.ParseFloat(r.value, 64)
		if err != nil {
			return 0, fmt.Errorf("_value %q is not a number: %w", r.value, err)
		}
		if math.IsNaN(f) {
			return 0, fmt.Errorf("%w: _value is NaN", ErrNoValuesFound)
		}
		return f, nil
	default:
		return 0, fmt.Errorf("_value %q has type %s, not a number", r.value, r.datatype)
	}
}

// parseInfluxCSV reads annotated CSV: each table starts with #datatype/#group/#default rows and
// a header row; every row carries a leading annotation column. An error table (columns error,
// reference) reports a query failure.
func parseInfluxCSV(body []byte) ([]influxRecord, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	var (
		records       []influxRecord
		datatypes     []string
		defaults      []string
		header        []string
		valueCol      = -1
		errorCol      = -1
		inAnnotations bool
	)
	for {
		row, err := r.Read()
		if err == io.EOF {
			return records, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: decoding the CSV response: %w: %s", TypeInfluxDB, err, truncate(string(body)))
		}
		if len(row) == 0 {
			continue
		}
		if strings.HasPrefix(row[0], "#") {
			if !inAnnotations { // the annotations of a new table
				inAnnotations = true
				header, datatypes, defaults = nil, nil, nil
			}
			switch row[0] {
			case "#datatype":
				datatypes = row
			case "#default":
				defaults = row
			}
			continue
		}
		inAnnotations = false
		// Without annotations a new table only shows as a new header row.
		if header == nil || (len(row) > 2 && row[1] == "result" && row[2] == "table") {
			header = row
			valueCol, errorCol = -1, -1
			for i, name := range row {
				if name == "_value" {
					valueCol = i
				}
			}
			// An error table has just the columns error and reference.
			if len(row) <= 3 && len(row) > 1 && row[1] == "error" {
				errorCol = 1
			}
			continue
		}
		if errorCol >= 0 {
			msg := cell(row, errorCol)
			if msg == "" {
				msg = strings.Join(row, ",")
			}
			return nil, fmt.Errorf("%s: query failed: %s", TypeInfluxDB, msg)
		}
		rec := influxRecord{columns: header[1:]}
		if valueCol >= 0 {
			rec.hasValue = true
			rec.value = cell(row, valueCol)
			if rec.value == "" {
				rec.value = cell(defaults, valueCol)
			}
			rec.datatype = cell(datatypes, valueCol)
		}
		records = append(records, rec)
	}
}

func cell(row []string, i int) string {
	if i < 0 || i >= len(row) {
		return ""
	}
	return row[i]
}
