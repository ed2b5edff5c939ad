package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// prometheusOnlineQuery must evaluate to 1 on a healthy server.
const prometheusOnlineQuery = "vector(1)"

// prometheusProvider runs instant PromQL queries with the official client library
// (POST /api/v1/query, form-encoded, falling back to GET when the server refuses POST).
// The stackdriver provider reuses it against Google Managed Prometheus.
type prometheusProvider struct {
	name    string // provider type, for error messages
	api     promv1.API
	timeout time.Duration
}

// newPrometheus builds the prometheus provider: address from the template or defaultAddress;
// auth from the secret key `token` (Bearer) or `username`+`password` (Basic); extra headers and
// insecureSkipVerify from the template.
func newPrometheus(spec flaggerv1.MetricTemplateProvider, defaultAddress string, credentials map[string][]byte, opts Options) (*prometheusProvider, error) {
	address := spec.Address
	if address == "" {
		address = defaultAddress
	}
	if address == "" {
		return nil, fmt.Errorf("%s: no address: set spec.provider.address", TypePrometheus)
	}
	base, err := baseURL(TypePrometheus, address)
	if err != nil {
		return nil, err
	}
	auth, err := tokenOrBasicAuth(TypePrometheus, spec, credentials, true)
	if err != nil {
		return nil, err
	}
	rt := &editTransport{
		base: newHTTPTransport(spec.InsecureSkipVerify),
		edit: func(r *http.Request) error {
			applyHeaders(r, spec.Headers)
			auth(r)
			return nil
		},
	}
	return newPrometheusAPI(TypePrometheus, base.String(), rt, opts.Timeout)
}

// newPrometheusAPI wraps the client library for address with transport rt.
func newPrometheusAPI(name, address string, rt http.RoundTripper, timeout time.Duration) (*prometheusProvider, error) {
	client, err := api.NewClient(api.Config{
		Address: address,
		Client:  &http.Client{Transport: rt, Timeout: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: creating the Prometheus API client: %w", name, err)
	}
	return &prometheusProvider{name: name, api: promv1.NewAPI(client), timeout: timeout}, nil
}

// tokenOrBasicAuth reads `token` (Bearer, when allowToken) or `username`+`password` (Basic).
// When the template names a secret, one of them must be there.
func tokenOrBasicAuth(provider string, spec flaggerv1.MetricTemplateProvider, credentials map[string][]byte, allowToken bool) (func(*http.Request), error) {
	if allowToken {
		if token := optionalCredential(credentials, "token"); token != "" {
			return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, nil
		}
	}
	user, pass := string(credentials["username"]), string(credentials["password"])
	switch {
	case user != "" && pass != "":
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }, nil
	case user != "":
		return nil, fmt.Errorf("%s: the credentials secret has a \"username\" key but no \"password\" key", provider)
	case pass != "":
		return nil, fmt.Errorf("%s: the credentials secret has a \"password\" key but no \"username\" key", provider)
	case spec.SecretRef != nil && allowToken:
		return nil, fmt.Errorf("%s: the credentials secret %q has neither a \"token\" key nor \"username\" and \"password\" keys", provider, spec.SecretRef.Name)
	case spec.SecretRef != nil:
		return nil, fmt.Errorf("%s: the credentials secret %q has no \"username\" and \"password\" keys", provider, spec.SecretRef.Name)
	}
	return func(*http.Request) {}, nil
}

// RunQuery runs an instant query (whitespace collapsed) and returns its single value.
func (p *prometheusProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	q := collapseWhitespace(query)
	v, _, _, err := p.api.Query(ctx, q, time.Time{})
	if err != nil {
		return 0, fmt.Errorf("%s: query %q: %w", p.name, q, describePromError(err))
	}
	f, err := promValue(v)
	if err != nil {
		return 0, fmt.Errorf("%s: query %q: %w", p.name, q, err)
	}
	return f, nil
}

// IsOnline runs `vector(1)` and expects 1.
func (p *prometheusProvider) IsOnline(ctx context.Context) (bool, error) {
	v, err := p.RunQuery(ctx, prometheusOnlineQuery)
	if err != nil {
		return false, err
	}
	if v != 1 {
		return false, fmt.Errorf("%s: %s returned %v, want 1", p.name, prometheusOnlineQuery, v)
	}
	return true, nil
}

// promErrorDetail adds the response body the client library keeps in Detail (for example the
// text of an HTTP 500) to its error, which otherwise only says "server_error: server error: 500".
type promErrorDetail struct {
	err    error
	detail string
}

func (e *promErrorDetail) Error() string { return e.err.Error() + ": " + e.detail }
func (e *promErrorDetail) Unwrap() error { return e.err }

func describePromError(err error) error {
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) && strings.TrimSpace(apiErr.Detail) != "" {
		return &promErrorDetail{err: err, detail: truncate(apiErr.Detail)}
	}
	return err
}

// promValue reduces a query result to one number. An instant vector must hold exactly one
// sample (Flagger silently took the last of several); a scalar is its value; a range vector is
// never a single value; an empty vector or NaN is ErrNoValuesFound.
func promValue(v model.Value) (float64, error) {
	switch r := v.(type) {
	case nil:
		return 0, ErrNoValuesFound
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, ErrNoValuesFound
		case 1:
			return notNaN(float64(r[0].Value))
		default:
			return 0, fmt.Errorf("%w: %d series returned (%s); aggregate the query to one series", ErrMultipleValuesReturned, len(r), seriesNames(r))
		}
	case *model.Scalar:
		return notNaN(float64(r.Value))
	case model.Matrix:
		return 0, fmt.Errorf("%w: a range vector (%d series) was returned; the query must return an instant vector or a scalar", ErrMultipleValuesReturned, len(r))
	case *model.String:
		return 0, fmt.Errorf("the query returned the string %q, not a number", r.Value)
	default:
		return 0, fmt.Errorf("unexpected result type %s", v.Type())
	}
}

// notNaN turns NaN into ErrNoValuesFound (a ratio over no traffic is 0/0).
func notNaN(f float64) (float64, error) {
	if math.IsNaN(f) {
		return 0, fmt.Errorf("%w: the result is NaN", ErrNoValuesFound)
	}
	return f, nil
}

// seriesNames lists the first few series of a vector for an error message.
func seriesNames(v model.Vector) string {
	const shown = 3
	names := make([]string, 0, shown)
	for i, s := range v {
		if i == shown {
			names = append(names, "…")
			break
		}
		names = append(names, s.Metric.String())
	}
	return strings.Join(names, ", ")
}
