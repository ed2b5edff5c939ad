package metrics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Google Cloud Monitoring (stackdriver).
//
// PromQL queries go to the Prometheus-compatible endpoint of Managed Service for Prometheus,
// <address>/v1/projects/<project>/location/global/prometheus/api/v1/query, through the
// prometheus provider (same result rules). Flagger's stackdriver provider ran MQL through
// QueryTimeSeries; so that its templates keep working, a query that starts with `fetch` (MQL's
// first table operation) goes to the MQL REST method <address>/v3/projects/<project>/timeSeries:query.
//
// Credentials: secret key `project` (or the key's project_id) and `serviceAccountKey` (a JSON
// service-account key, exchanged for an OAuth2 token with the JWT flow; its token_uri is
// honoured). Without a key, and only with Options.AllowAmbientCredentials and an https address on
// monitoring.googleapis.com, the token comes from the GKE / GCE metadata server (Workload
// Identity), whose host GCE_METADATA_HOST overrides; otherwise the template is an error.
const (
	stackdriverDefaultAddress = "https://monitoring.googleapis.com"

	stackdriverProjectSecretKey = "project"
	stackdriverKeySecretKey     = "serviceAccountKey"

	stackdriverScope      = "https://www.googleapis.com/auth/monitoring.read"
	googleDefaultTokenURL = "https://oauth2.googleapis.com/token"
	googleMetadataHost    = "metadata.google.internal"
)

// mqlQuery recognises MQL: `fetch …`, optionally inside a `{ name: fetch …; … }` table block.
var mqlQuery = regexp.MustCompile(`^\s*(?:\{\s*(?:[A-Za-z_]\w*\s*:\s*)?)?fetch\s+[A-Za-z_]`)

type stackdriverProvider struct {
	prom    *prometheusProvider
	client  *http.Client // OAuth2-authenticated, for MQL
	base    *url.URL
	project string
	timeout time.Duration
}

func newStackdriver(spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, opts Options) (*stackdriverProvider, error) {
	address := spec.Address
	if address == "" {
		address = stackdriverDefaultAddress
	}
	base, err := baseURL(TypeStackdriver, address)
	if err != nil {
		return nil, err
	}
	var key *googleServiceAccountKey
	if raw := credentials[stackdriverKeySecretKey]; len(bytes.TrimSpace(raw)) > 0 {
		if key, err = parseGoogleKey(raw); err != nil {
			return nil, err
		}
	}
	if key == nil {
		// Checked before anything else so that a template without credentials hears why first.
		if err := opts.ambientRefusal(TypeStackdriver, credentials, strconv.Quote(stackdriverKeySecretKey), base,
			spec.InsecureSkipVerify, googleMonitoringHost, isGoogleMonitoringAPI); err != nil {
			return nil, err
		}
	}
	project := optionalCredential(credentials, stackdriverProjectSecretKey)
	if project == "" && key != nil {
		project = key.ProjectID
	}
	if project == "" {
		return nil, fmt.Errorf("%s: the credentials secret has no %q key", TypeStackdriver, stackdriverProjectSecretKey)
	}

	var ts oauth2.TokenSource
	if key != nil {
		ts = key.tokenSource(opts.Timeout)
	} else {
		ts = metadataTokenSource(opts.Timeout)
	}
	rt := &editTransport{
		base: &oauth2.Transport{Source: ts, Base: newHTTPTransport(spec.InsecureSkipVerify)},
		edit: func(r *http.Request) error {
			applyHeaders(r, spec.Headers)
			r.Header.Del("Authorization") // set by the OAuth2 transport
			return nil
		},
	}
	promBase := endpoint(base, "/v1/projects/"+url.PathEscape(project)+"/location/global/prometheus")
	prom, err := newPrometheusAPI(TypeStackdriver, promBase.String(), rt, opts.Timeout)
	if err != nil {
		return nil, err
	}
	return &stackdriverProvider{
		prom:    prom,
		client:  &http.Client{Transport: rt, Timeout: opts.Timeout},
		base:    base,
		project: project,
		timeout: opts.Timeout,
	}, nil
}

// RunQuery runs PromQL through Managed Prometheus, or MQL when the query starts with `fetch`.
func (p *stackdriverProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	if mqlQuery.MatchString(query) {
		return p.runMQL(ctx, query)
	}
	return p.prom.RunQuery(ctx, query)
}

// IsOnline runs `vector(1)` through Managed Prometheus: it needs a valid token, the project and
// the Monitoring API.
func (p *stackdriverProvider) IsOnline(ctx context.Context) (bool, error) {
	return p.prom.IsOnline(ctx)
}

// mqlResponse is the part of a timeSeries:query answer used here (proto3 JSON).
type mqlResponse struct {
	TimeSeriesData []struct {
		PointData []struct {
			Values []struct {
				DoubleValue json.RawMessage `json:"doubleValue"`
				Int64Value  json.RawMessage `json:"int64Value"`
			} `json:"values"`
		} `json:"pointData"`
	} `json:"timeSeriesData"`
	PartialErrors []struct {
		Message string `json:"message"`
	} `json:"partialErrors"`
}

// runMQL returns the newest point of the single time series an MQL query yields. No series
// or point is ErrNoValuesFound; several series are ErrMultipleValuesReturned (Flagger took
// the first).
func (p *stackdriverProvider) runMQL(ctx context.Context, query string) (float64, error) {
	payload, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		return 0, fmt.Errorf("%s: encoding the MQL request: %w", TypeStackdriver, err)
	}
	u := endpoint(p.base, "/v3/projects/"+url.PathEscape(p.project)+"/timeSeries:query")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(payload))
	if err != nil {
		return 0, fmt.Errorf("%s: building the request: %w", TypeStackdriver, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	body, err := doRequest(ctx, p.client, p.timeout, TypeStackdriver, req)
	if err != nil {
		return 0, googleErrorMessage(err)
	}
	var res mqlResponse
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("%s: decoding the MQL response: %w: %s", TypeStackdriver, err, truncate(string(body)))
	}
	series := res.TimeSeriesData
	switch {
	case len(series) == 0 && len(res.PartialErrors) > 0:
		return 0, fmt.Errorf("%s: MQL query failed: %s", TypeStackdriver, res.PartialErrors[0].Message)
	case len(series) == 0:
		return 0, fmt.Errorf("%s: MQL query: %w", TypeStackdriver, ErrNoValuesFound)
	case len(series) > 1:
		return 0, fmt.Errorf("%s: MQL query: %w: %d time series returned; aggregate them (e.g. | group_by [])", TypeStackdriver, ErrMultipleValuesReturned, len(series))
	}
	points := series[0].PointData
	if len(points) == 0 || len(points[0].Values) == 0 {
		return 0, fmt.Errorf("%s: MQL query: %w", TypeStackdriver, ErrNoValuesFound)
	}
	v := points[0].Values[0]
	raw := v.DoubleValue
	if len(raw) == 0 {
		raw = v.Int64Value
	}
	f, err := protoJSONNumber(raw)
	if err != nil {
		return 0, fmt.Errorf("%s: MQL query: %w", TypeStackdriver, err)
	}
	if math.IsNaN(f) {
		return 0, fmt.Errorf("%s: MQL query: %w: the value is NaN", TypeStackdriver, ErrNoValuesFound)
	}
	return f, nil
}

// protoJSONNumber reads a proto3 JSON number: a JSON number, or a string for int64 values and
// for "NaN" / "Infinity".
func protoJSONNumber(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, fmt.Errorf("%w: the point has no numeric value", ErrNoValuesFound)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("the value %s is not a number", raw)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("the value %q is not a number", s)
	}
	return f, nil
}

// googleErrorMessage adds the message of a {"error":{"code":…,"message":…,"status":…}} body.
func googleErrorMessage(err error) error {
	var se *StatusError
	if !errors.As(err, &se) {
		return err
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(se.Body), &e) == nil && e.Error.Message != "" {
		return fmt.Errorf("%w (%s: %s)", err, e.Error.Status, e.Error.Message)
	}
	return err
}

// googleServiceAccountKey is the JSON key file of a service account.
type googleServiceAccountKey struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

func parseGoogleKey(raw []byte) (*googleServiceAccountKey, error) {
	var k googleServiceAccountKey
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("%s: the %q secret key is not a JSON service-account key: %w", TypeStackdriver, stackdriverKeySecretKey, err)
	}
	if k.Type != "service_account" {
		return nil, fmt.Errorf("%s: the %q secret key has type %q; only \"service_account\" keys are supported", TypeStackdriver, stackdriverKeySecretKey, k.Type)
	}
	if k.ClientEmail == "" || k.PrivateKey == "" {
		return nil, fmt.Errorf("%s: the %q secret key lacks client_email or private_key", TypeStackdriver, stackdriverKeySecretKey)
	}
	if k.TokenURI == "" {
		k.TokenURI = googleDefaultTokenURL
	}
	return &k, nil
}

// googleTokenSources shares token sources (and so their cached tokens) between provider
// instances: a provider is typically built for every analysis run.
var googleTokenSources = struct {
	sync.Mutex
	m map[string]oauth2.TokenSource
}{m: map[string]oauth2.TokenSource{}}

func sharedTokenSource(key string, build func() oauth2.TokenSource) oauth2.TokenSource {
	googleTokenSources.Lock()
	defer googleTokenSources.Unlock()
	if ts, ok := googleTokenSources.m[key]; ok {
		return ts
	}
	ts := build()
	googleTokenSources.m[key] = ts
	return ts
}

// tokenSource runs the two-legged JWT flow against the key's token_uri, bounded by timeout.
func (k *googleServiceAccountKey) tokenSource(timeout time.Duration) oauth2.TokenSource {
	sum := sha256.Sum256([]byte(k.ClientEmail + "\x00" + k.PrivateKey + "\x00" + k.TokenURI))
	return sharedTokenSource("jwt|"+hex.EncodeToString(sum[:]), func() oauth2.TokenSource {
		cfg := &jwt.Config{
			Email:        k.ClientEmail,
			PrivateKey:   []byte(k.PrivateKey),
			PrivateKeyID: k.PrivateKeyID,
			Scopes:       []string{stackdriverScope},
			TokenURL:     k.TokenURI,
		}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: timeout})
		return cfg.TokenSource(ctx)
	})
}

// metadataTokenSource fetches the pod's (Workload Identity) or node's token from the metadata
// server.
func metadataTokenSource(timeout time.Duration) oauth2.TokenSource {
	host := os.Getenv("GCE_METADATA_HOST")
	if host == "" {
		host = googleMetadataHost
	}
	return sharedTokenSource("metadata|"+host, func() oauth2.TokenSource {
		return oauth2.ReuseTokenSource(nil, &googleMetadataToken{host: host, client: &http.Client{Timeout: timeout}})
	})
}

type googleMetadataToken struct {
	host   string
	client *http.Client
}

func (m *googleMetadataToken) Token() (*oauth2.Token, error) {
	u := url.URL{
		Scheme:   "http",
		Host:     m.host,
		Path:     "/computeMetadata/v1/instance/service-accounts/default/token",
		RawQuery: url.Values{"scopes": {stackdriverScope}}.Encode(),
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	body, err := doRequest(context.Background(), m.client, m.client.Timeout, "metadata server", req)
	if err != nil {
		return nil, fmt.Errorf("no serviceAccountKey and no token from the metadata server: %w", err)
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return nil, fmt.Errorf("decoding the metadata server token: %v: %s", err, truncate(string(body)))
	}
	return &oauth2.Token{
		AccessToken: t.AccessToken,
		TokenType:   strings.TrimSpace(t.TokenType),
		Expiry:      time.Now().Add(time.Duration(t.ExpiresIn) * time.Second),
	}, nil
}
