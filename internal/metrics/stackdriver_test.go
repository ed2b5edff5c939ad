package metrics

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

var (
	testRSAOnce sync.Once
	testRSAKey  *rsa.PrivateKey
)

func testRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	testRSAOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testRSAKey = k
	})
	return testRSAKey
}

// serviceAccountKey renders a service-account JSON key whose token_uri is tokenURI.
func serviceAccountKey(t *testing.T, tokenURI string) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testRSA(t))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := json.Marshal(map[string]string{
		"type":                        "service_account",
		"project_id":                  "key-project",
		"private_key_id":              "0123456789abcdef",
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                "pennant@key-project.iam.gserviceaccount.com",
		"client_id":                   "112233445566778899",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
	})
	return key
}

// newTokenServer is an OAuth2 token endpoint that checks the JWT-bearer assertion.
func newTokenServer(t *testing.T) *backend {
	t.Helper()
	var srv *backend
	srv = newBackend(t, func(w http.ResponseWriter, r *http.Request, body string) {
		form, _ := url.ParseQuery(body)
		if form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		parts := strings.Split(form.Get("assertion"), ".")
		if len(parts) != 3 {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if rsa.VerifyPKCS1v15(&testRSA(t).PublicKey, crypto.SHA256, digest[:], sig) != nil {
			http.Error(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`, http.StatusBadRequest)
			return
		}
		var header, claims map[string]any
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		c, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(h, &header)
		_ = json.Unmarshal(c, &claims)
		if header["alg"] != "RS256" || header["kid"] != "0123456789abcdef" ||
			claims["iss"] != "pennant@key-project.iam.gserviceaccount.com" ||
			claims["scope"] != "https://www.googleapis.com/auth/monitoring.read" ||
			claims["aud"] != srv.URL+"/token" {
			http.Error(w, `{"error":"invalid_grant","error_description":"bad claims"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"ya29.test-token","expires_in":3599,"token_type":"Bearer"}`))
	})
	return srv
}

const mqlOneSeries = `{"timeSeriesDescriptor":{"labelDescriptors":[{"key":"resource.project_id"}],
 "pointDescriptors":[{"key":"value.response_latencies_percentile","valueType":"DOUBLE","metricKind":"GAUGE","unit":"ms"}]},
 "timeSeriesData":[{"labelValues":[{"stringValue":"my-project"}],
  "pointData":[{"values":[{"doubleValue":123.4}],"timeInterval":{"startTime":"2023-11-14T22:13:00Z","endTime":"2023-11-14T22:13:00Z"}},
               {"values":[{"doubleValue":99}],"timeInterval":{"startTime":"2023-11-14T22:12:00Z","endTime":"2023-11-14T22:12:00Z"}}]}]}`

func newTestStackdriver(t *testing.T, address string, creds map[string][]byte, opts Options) Provider {
	t.Helper()
	p, err := NewWithOptions(flaggerv1.MetricTemplateProvider{Type: TypeStackdriver, Address: address,
		SecretRef: &flaggerv1.SecretReference{Name: "gcp"}}, "", creds, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStackdriverPromQLRequestShape(t *testing.T) {
	tokens := newTokenServer(t)
	srv := newBackend(t, reply(http.StatusOK, "application/json", promOneSample))
	p := newTestStackdriver(t, srv.URL, map[string][]byte{
		"project":           []byte("my-project\n"),
		"serviceAccountKey": serviceAccountKey(t, tokens.URL+"/token"),
	}, Options{})

	query := `sum(rate(istio_requests_total{destination_workload="podinfo", response_code=~"5.."}[1m]))
	  / sum(rate(istio_requests_total{destination_workload="podinfo"}[1m]))`
	for range 2 { // the token is fetched once and reused
		v, err := p.RunQuery(context.Background(), query)
		mustValue(t, v, err, 99.5)
	}
	mustEqual(t, "token requests", len(tokens.requests()), 1)
	tr := tokens.last(t)
	mustEqual(t, "token method", tr.Method, http.MethodPost)
	mustEqual(t, "token path", tr.Path, "/token")

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodPost)
	mustEqual(t, "path", r.Path, "/v1/projects/my-project/location/global/prometheus/api/v1/query")
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Bearer ya29.test-token")
	form, _ := url.ParseQuery(r.Body)
	mustEqual(t, "query", form.Get("query"), collapseWhitespace(query))
}

func TestStackdriverMQLRequestShape(t *testing.T) {
	tokens := newTokenServer(t)
	srv := newBackend(t, reply(http.StatusOK, "application/json", mqlOneSeries))
	p := newTestStackdriver(t, srv.URL, map[string][]byte{
		"serviceAccountKey": serviceAccountKey(t, tokens.URL+"/token"), // project from the key
	}, Options{})
	query := `
    fetch k8s_container
    | metric 'istio.io/service/server/response_latencies'
    | filter (metric.destination_service_name == 'podinfo-canary')
    | align delta(1m)
    | every 1m
    | group_by [], [value_response_latencies_percentile: percentile(value.response_latencies, 99)]`
	v, err := p.RunQuery(context.Background(), query)
	mustValue(t, v, err, 123.4) // the newest point

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodPost)
	mustEqual(t, "path", r.Path, "/v3/projects/key-project/timeSeries:query")
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Bearer ya29.test-token")
	mustEqual(t, "content type", r.Header.Get("Content-Type"), "application/json")
	var body map[string]string
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "MQL query", body["query"], query)
	mustEqual(t, "body keys", len(body), 1)
}

func TestStackdriverMetadataServerToken(t *testing.T) {
	meta := newBackend(t, reply(http.StatusOK, "application/json", `{"access_token":"ya29.workload-identity","expires_in":3599,"token_type":"Bearer"}`))
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(meta.URL, "http://"))
	srv := newBackend(t, reply(http.StatusOK, "application/json", promVectorOne))
	// The loopback server stands for monitoring.googleapis.com: elsewhere the token is refused.
	p := newTestStackdriver(t, srv.URL, map[string][]byte{"project": []byte("my-project")}, loopbackAmbient(srv.URL))
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	m := meta.last(t)
	mustEqual(t, "metadata path", m.Path, "/computeMetadata/v1/instance/service-accounts/default/token")
	mustEqual(t, "metadata flavor", m.Header.Get("Metadata-Flavor"), "Google")
	mustEqual(t, "scopes", m.Query.Get("scopes"), "https://www.googleapis.com/auth/monitoring.read")
	r := srv.last(t)
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Bearer ya29.workload-identity")
	form, _ := url.ParseQuery(r.Body)
	mustEqual(t, "online query", form.Get("query"), "vector(1)")
}

func TestStackdriverResults(t *testing.T) {
	tokens := newTokenServer(t)
	creds := func() map[string][]byte {
		return map[string][]byte{"project": []byte("p"), "serviceAccountKey": serviceAccountKey(t, tokens.URL+"/token")}
	}
	const mql = "fetch k8s_container | metric 'x' | every 1m"
	cases := []struct {
		name   string
		query  string
		status int
		body   string
		want   float64
		is     error
		msg    string
	}{
		{name: "MQL int64", query: mql, status: 200, body: `{"timeSeriesData":[{"pointData":[{"values":[{"int64Value":"42"}]}]}]}`, want: 42},
		{name: "MQL table block", query: "{ t_0: fetch k8s_container ; t_1: fetch k8s_pod } | join", status: 200, body: `{"timeSeriesData":[{"pointData":[{"values":[{"doubleValue":1.5}]}]}]}`, want: 1.5},
		{name: "MQL no series", query: mql, status: 200, body: `{"timeSeriesDescriptor":{}}`, is: ErrNoValuesFound},
		{name: "MQL NaN", query: mql, status: 200, body: `{"timeSeriesData":[{"pointData":[{"values":[{"doubleValue":"NaN"}]}]}]}`, is: ErrNoValuesFound},
		{name: "MQL two series", query: mql, status: 200, body: `{"timeSeriesData":[{"pointData":[{"values":[{"doubleValue":1}]}]},{"pointData":[{"values":[{"doubleValue":2}]}]}]}`, is: ErrMultipleValuesReturned, msg: "2 time series"},
		{name: "MQL partial error", query: mql, status: 200, body: `{"partialErrors":[{"code":3,"message":"Line 1, column 7: unknown resource type"}]}`, msg: "unknown resource type"},
		{name: "MQL HTTP 400", query: mql, status: 400, body: `{"error":{"code":400,"message":"Query must start with 'fetch'","status":"INVALID_ARGUMENT"}}`, msg: "INVALID_ARGUMENT: Query must start with 'fetch'"},
		{name: "MQL HTTP 500", query: mql, status: 500, body: `{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}`, msg: "Internal error encountered."},
		{name: "MQL malformed JSON", query: mql, status: 200, body: `{"timeSeriesData":[`, msg: "decoding"},
		{name: "PromQL empty", query: "up", status: 200, body: promEmpty, is: ErrNoValuesFound},
		{name: "PromQL several series", query: "up", status: 200, body: promSeveral, is: ErrMultipleValuesReturned},
		{name: "PromQL HTTP 500", query: "up", status: 500, body: "backend unavailable", msg: "backend unavailable"},
		{name: "PromQL malformed JSON", query: "up", status: 200, body: `{"status":`, msg: "stackdriver"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(tc.status, "application/json", tc.body))
			p := newTestStackdriver(t, srv.URL, creds(), Options{})
			v, err := p.RunQuery(context.Background(), tc.query)
			switch {
			case tc.is != nil:
				mustErrorIs(t, err, tc.is)
			case tc.msg != "":
				mustPlainError(t, err)
			default:
				mustValue(t, v, err, tc.want)
			}
			if tc.msg != "" {
				mustContain(t, err, tc.msg)
			}
		})
	}
	t.Run("token refused", func(t *testing.T) {
		srv := newBackend(t, reply(http.StatusOK, "application/json", promVectorOne))
		refusing := newBackend(t, reply(http.StatusBadRequest, "application/json", `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`))
		p := newTestStackdriver(t, srv.URL, map[string][]byte{"project": []byte("p"), "serviceAccountKey": serviceAccountKey(t, refusing.URL+"/token")}, Options{})
		ok, err := p.IsOnline(context.Background())
		if ok {
			t.Fatal("IsOnline must fail without a token")
		}
		mustContain(t, err, "Invalid JWT Signature")
		mustEqual(t, "monitoring requests", len(srv.requests()), 0)
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestStackdriver(t, srv.URL, creds(), Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "up"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, mql); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestStackdriver(t, srv.URL, creds(), Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, mql); return err })
	})
	t.Run("hanging token endpoint", func(t *testing.T) {
		hang := newHangingServer(t)
		srv := newBackend(t, reply(http.StatusOK, "application/json", promVectorOne))
		p := newTestStackdriver(t, srv.URL, map[string][]byte{"project": []byte("p"), "serviceAccountKey": serviceAccountKey(t, hang.URL+"/token")}, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
	})
}

func TestStackdriverConfig(t *testing.T) {
	_, err := New(flaggerv1.MetricTemplateProvider{Type: TypeStackdriver}, "", nil)
	mustContain(t, err, "no credentials secret", "ambient cloud credentials are disabled (-enable-ambient-cloud-credentials)")
	_, err = NewWithOptions(flaggerv1.MetricTemplateProvider{Type: TypeStackdriver}, "", nil, Options{AllowAmbientCredentials: true})
	mustContain(t, err, `"project"`)
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeStackdriver}, "", map[string][]byte{"project": []byte("p"), "serviceAccountKey": []byte("{not json")})
	mustContain(t, err, "serviceAccountKey")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeStackdriver}, "", map[string][]byte{"project": []byte("p"), "serviceAccountKey": []byte(`{"type":"external_account"}`)})
	mustContain(t, err, "external_account")

	for q, want := range map[string]bool{
		"fetch k8s_container | every 1m":        true,
		"\n  fetch gce_instance::compute.x":     true,
		"{ t_0: fetch k8s_pod ; t_1: fetch x }": true,
		"{ fetch k8s_pod ; fetch x } | join":    true,
		`sum(rate(fetch_total[1m]))`:            false,
		`{__name__="fetch_total"}`:              false,
		`fetch_total > 0`:                       false,
	} {
		mustEqual(t, "is MQL: "+q, mqlQuery.MatchString(q), want)
	}
}
