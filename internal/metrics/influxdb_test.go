package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// csvLines joins lines with CRLF, as InfluxDB does, and ends with the blank line of a table.
func csvLines(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

var (
	influxOneRecord = csvLines(
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double,string,string",
		"#group,false,false,true,true,false,true,true",
		"#default,_result,,,,,,",
		",result,table,_start,_stop,_value,_field,_measurement",
		",,0,2023-11-14T22:03:20Z,2023-11-14T22:13:20Z,0.75,error_rate,http",
	)
	influxTwoTables = csvLines(
		"#datatype,string,long,double,string",
		"#group,false,false,false,true",
		"#default,_result,,,",
		",result,table,_value,pod",
		",,0,1.5,podinfo-a",
	) + csvLines(
		"#datatype,string,long,double,string",
		"#group,false,false,false,true",
		"#default,_result,,,",
		",result,table,_value,pod",
		",,1,2.5,podinfo-b",
	)
	influxLong       = csvLines("#datatype,string,long,long", "#group,false,false,false", "#default,_result,,", ",result,table,_value", ",,0,42")
	influxNull       = csvLines("#datatype,string,long,double", "#group,false,false,false", "#default,_result,,", ",result,table,_value", ",,0,")
	influxDefaulted  = csvLines("#datatype,string,long,double", "#group,false,false,false", "#default,_result,,7", ",result,table,_value", ",,0,")
	influxNoAnnot    = ",result,table,_value\r\n,_result,0,3.25\r\n"
	influxEmpty      = "\r\n"
	influxNoValueCol = csvLines("#datatype,string,long,double", "#group,false,false,false", "#default,_result,,", ",result,table,rate", ",,0,1")
	influxStringVal  = csvLines("#datatype,string,long,string", "#group,false,false,false", "#default,_result,,", ",result,table,_value", ",,0,abc")
	influxErrorTable = csvLines(
		"#datatype,string,string",
		"#group,true,true",
		"#default,,",
		",error,reference",
		`,"failed to initialize execute state: could not find bucket ""metrics""",`,
	)
)

func newTestInflux(t *testing.T, address string, creds map[string][]byte, opts Options) Provider {
	t.Helper()
	spec := flaggerv1.MetricTemplateProvider{Type: TypeInfluxDB, Address: address}
	if creds != nil {
		spec.SecretRef = &flaggerv1.SecretReference{Name: "influx"}
	}
	p, err := NewWithOptions(spec, "", creds, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var influxCreds = map[string][]byte{"token": []byte("influx-token\n"), "org": []byte("my org")}

func TestInfluxDBRequestShape(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "text/csv; charset=utf-8", influxOneRecord))
	p := newTestInflux(t, srv.URL+"/", influxCreds, Options{})
	flux := `from(bucket: "metrics")
  |> range(start: -5m) // the analysis window
  |> filter(fn: (r) => r._measurement == "http" and r._field == "error_rate")
  |> mean()`
	v, err := p.RunQuery(context.Background(), flux)
	mustValue(t, v, err, 0.75)

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodPost)
	mustEqual(t, "path", r.Path, "/api/v2/query")
	mustEqual(t, "org", r.Query.Get("org"), "my org")
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Token influx-token")
	mustEqual(t, "content type", r.Header.Get("Content-Type"), "application/json")
	mustEqual(t, "accept", r.Header.Get("Accept"), "application/csv")
	var body struct {
		Query   string `json:"query"`
		Type    string `json:"type"`
		Dialect struct {
			Header      bool     `json:"header"`
			Delimiter   string   `json:"delimiter"`
			Annotations []string `json:"annotations"`
		} `json:"dialect"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("request body %q: %v", r.Body, err)
	}
	mustEqual(t, "flux (unchanged: comments need their newlines)", body.Query, flux)
	mustEqual(t, "type", body.Type, "flux")
	mustEqual(t, "header", body.Dialect.Header, true)
	mustEqual(t, "delimiter", body.Dialect.Delimiter, ",")
	mustEqual(t, "annotations", strings.Join(body.Dialect.Annotations, ","), "datatype,group,default")
}

func TestInfluxDBWithoutSecret(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "text/csv", influxNoAnnot))
	p := newTestInflux(t, srv.URL, nil, Options{})
	v, err := p.RunQuery(context.Background(), "q")
	mustValue(t, v, err, 3.25)
	r := srv.last(t)
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "")
	mustEqual(t, "org param", r.Query.Has("org"), false)
}

func TestInfluxDBIsOnline(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "text/csv", influxEmpty))
	p := newTestInflux(t, srv.URL, influxCreds, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	var body struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal([]byte(srv.last(t).Body), &body)
	mustEqual(t, "online query", body.Query, "buckets() |> limit(n: 1)")

	denied := newBackend(t, reply(http.StatusUnauthorized, "application/json", `{"code":"unauthorized","message":"unauthorized access"}`))
	p = newTestInflux(t, denied.URL, influxCreds, Options{})
	ok, err = p.IsOnline(context.Background())
	if ok {
		t.Fatal("IsOnline must fail on 401")
	}
	mustStatus(t, err, http.StatusUnauthorized, "unauthorized access")
	mustContain(t, err, "unauthorized: unauthorized access")
}

func TestInfluxDBResults(t *testing.T) {
	cases := []responseCase{
		{name: "long", status: 200, body: influxLong, want: 42},
		{name: "default value", status: 200, body: influxDefaulted, want: 7},
		{name: "no record", status: 200, body: influxEmpty, is: ErrNoValuesFound},
		{name: "null value", status: 200, body: influxNull, is: ErrNoValuesFound},
		{name: "two tables", status: 200, body: influxTwoTables, is: ErrMultipleValuesReturned, msg: "2 records"},
		{name: "no _value column", status: 200, body: influxNoValueCol, msg: "no _value column"},
		{name: "string value", status: 200, body: influxStringVal, msg: "not a number"},
		{name: "error table", status: 200, body: influxErrorTable, msg: `could not find bucket "metrics"`},
		{name: "HTTP 400", status: 400, body: `{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier frm"}`, msg: "compilation failed"},
		{name: "HTTP 500", status: 500, body: `{"code":"internal error","message":"unexpected error writing result"}`, msg: "unexpected error writing result"},
		{name: "malformed CSV", status: 200, body: ",result,table,_value\n,,0,\"1.5\n", msg: "decoding"},
	}
	runResponseCases(t, cases, "text/csv", "q", func(t *testing.T, url string) Provider { return newTestInflux(t, url, influxCreds, Options{}) })
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestInflux(t, srv.URL, influxCreds, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "q"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestInflux(t, srv.URL, influxCreds, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "q"); return err })
	})
}

func TestInfluxDBConfig(t *testing.T) {
	ref := &flaggerv1.SecretReference{Name: "influx"}
	_, err := New(flaggerv1.MetricTemplateProvider{Type: TypeInfluxDB}, "http://ignored", nil)
	mustContain(t, err, "address")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeInfluxDB, Address: "http://i", SecretRef: ref}, "", map[string][]byte{"org": []byte("o")})
	mustContain(t, err, `"token"`)
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeInfluxDB, Address: "http://i", SecretRef: ref}, "", map[string][]byte{"token": []byte("t")})
	mustContain(t, err, `"org"`)
}
