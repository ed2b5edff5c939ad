package metrics

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// loopbackAmbient allows ambient credentials and lets the loopback server at rawURL stand for
// the vendor's API, for tests of the ambient credential sources themselves.
func loopbackAmbient(rawURL string) Options {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	return Options{AllowAmbientCredentials: true, ambientTestHost: u.Host}
}

// ambientModes are the settings a tenant's template must not get the controller's identity
// under: the option off, and on (but the address is not the vendor's).
var ambientModes = []struct {
	name string
	opts Options
	msg  string
}{
	{name: "option off", opts: Options{}, msg: "ambient cloud credentials are disabled (-enable-ambient-cloud-credentials)"},
	{name: "option on", opts: Options{AllowAmbientCredentials: true}, msg: "are sent only to"},
}

// useProvider calls the backend through p the ways the analysis does.
func useProvider(p Provider, query string) {
	_, _ = p.IsOnline(context.Background())
	_, _ = p.RunQuery(context.Background(), query)
}

// mustSeeNoAuthorization fails when the server received anything that could carry an identity.
func mustSeeNoAuthorization(t *testing.T, srv *backend) {
	t.Helper()
	for _, r := range srv.requests() {
		for _, h := range []string{"Authorization", "X-Amz-Security-Token"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("the template's server received %s %q", h, v)
			}
		}
	}
	mustEqual(t, "requests to the template's server", len(srv.requests()), 0)
}

func TestStackdriverTemplateAddressNeverGetsTheMetadataToken(t *testing.T) {
	meta := newBackend(t, reply(http.StatusOK, "application/json", `{"access_token":"ya29.controller-identity","expires_in":3599,"token_type":"Bearer"}`))
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(meta.URL, "http://"))
	for _, mode := range ambientModes {
		for _, creds := range []map[string][]byte{nil, {"project": []byte("tenant-project")}} {
			t.Run(mode.name, func(t *testing.T) {
				tenant := newBackend(t, reply(http.StatusOK, "application/json", promVectorOne))
				spec := flaggerv1.MetricTemplateProvider{Type: TypeStackdriver, Address: tenant.URL}
				p, err := NewWithOptions(spec, "", creds, mode.opts)
				if err == nil {
					useProvider(p, "up")
					useProvider(p, "fetch k8s_container | every 1m")
				}
				mustContain(t, err, "stackdriver: ", mode.msg)
				mustSeeNoAuthorization(t, tenant)
			})
		}
	}
	mustEqual(t, "metadata server calls", len(meta.requests()), 0)
}

func TestCloudWatchTemplateAddressNeverGetsTheEnvironmentCredentials(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIACONTROLLER")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "controller-secret")
	t.Setenv("AWS_SESSION_TOKEN", "CONTROLLER-SESSION")
	for _, mode := range ambientModes {
		t.Run(mode.name, func(t *testing.T) {
			tenant := newBackend(t, reply(http.StatusOK, cloudWatchContentType, cloudWatchOneResult))
			spec := flaggerv1.MetricTemplateProvider{Type: TypeCloudWatch, Address: tenant.URL, Region: "eu-west-1"}
			p, err := NewWithOptions(spec, "", nil, mode.opts)
			if err == nil {
				useProvider(p, cloudWatchQueryJSON)
			}
			mustContain(t, err, "cloudwatch: ", mode.msg)
			mustSeeNoAuthorization(t, tenant)
		})
	}
}

// A template's own credentials still go to its own address, whatever the option.
func TestTemplateCredentialsDoNotNeedAmbientCredentials(t *testing.T) {
	clearAWSEnv(t)
	srv := newBackend(t, reply(http.StatusOK, cloudWatchContentType, cloudWatchOneResult))
	p := newTestCloudWatch(t, srv.URL, cloudWatchCreds, Options{})
	v, err := p.RunQuery(context.Background(), cloudWatchQueryJSON)
	mustValue(t, v, err, 1.25)
	mustEqual(t, "session token", srv.last(t).Header.Get("X-Amz-Security-Token"), "FwoGZXIvYXdzEXAMPLE")
}

func TestAmbientCredentialsOnlyForTheVendorAPI(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIACONTROLLER")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "controller-secret")
	on := Options{AllowAmbientCredentials: true}
	cases := []struct {
		provider, region, address string
		insecure                  bool
		allowed                   bool
	}{
		{provider: TypeStackdriver, address: "", allowed: true},
		{provider: TypeStackdriver, address: "https://monitoring.googleapis.com", allowed: true},
		{provider: TypeStackdriver, address: "https://MONITORING.googleapis.com:443/", allowed: true},
		{provider: TypeStackdriver, address: "http://monitoring.googleapis.com"},
		{provider: TypeStackdriver, address: "https://monitoring.googleapis.com", insecure: true},
		{provider: TypeStackdriver, address: "https://monitoring.googleapis.com:8443"},
		{provider: TypeStackdriver, address: "https://monitoring.googleapis.com.evil.example"},
		{provider: TypeStackdriver, address: "https://evil.example/monitoring.googleapis.com"},
		{provider: TypeStackdriver, address: "https://storage.googleapis.com"},
		{provider: TypeCloudWatch, region: "eu-west-1", address: "", allowed: true},
		{provider: TypeCloudWatch, region: "cn-north-1", address: "", allowed: true},
		{provider: TypeCloudWatch, region: "us-gov-west-1", address: "https://monitoring.us-gov-west-1.amazonaws.com", allowed: true},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://monitoring-fips.us-east-1.amazonaws.com", allowed: true},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://vpce-0123456789abcdef0-abcdefgh.monitoring.us-east-1.vpce.amazonaws.com", allowed: true},
		{provider: TypeCloudWatch, region: "us-east-1", address: "http://monitoring.us-east-1.amazonaws.com"},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://monitoring.us-east-1.amazonaws.com", insecure: true},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://monitoring.eu-west-1.amazonaws.com"},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://monitoring.us-east-1.amazonaws.com.cn"},
		// Names any AWS customer can get, with a valid certificate for API Gateway.
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://monitoring-123.us-east-1.elb.amazonaws.com"},
		{provider: TypeCloudWatch, region: "us-east-1.elb", address: ""},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://vpce-1.vpce-svc-0123.us-east-1.vpce.amazonaws.com"},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://monitoring.us-east-1.amazonaws.com.evil.example"},
		{provider: TypeCloudWatch, region: "us-east-1", address: "https://127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.provider+" "+tc.region+" "+tc.address, func(t *testing.T) {
			spec := flaggerv1.MetricTemplateProvider{Type: tc.provider, Address: tc.address, Region: tc.region, InsecureSkipVerify: tc.insecure}
			creds := map[string][]byte{"project": []byte("p")}
			// Nothing is called: building the provider decides.
			_, err := NewWithOptions(spec, "", creds, on)
			if tc.allowed {
				if err != nil {
					t.Fatalf("ambient credentials refused: %v", err)
				}
				return
			}
			mustContain(t, err, "ambient cloud credentials (-enable-ambient-cloud-credentials) are sent only to")
		})
	}
}

func TestAmbientRefusalIsRedacted(t *testing.T) {
	spec := flaggerv1.MetricTemplateProvider{Type: TypeStackdriver, Address: "https://user:hunter2@evil.example/?key=s3cret"}
	_, err := NewWithOptions(spec, "", map[string][]byte{"project": []byte("p")}, Options{AllowAmbientCredentials: true})
	mustContain(t, err, `the template's credentials secret has no "serviceAccountKey"`, "evil.example")
	for _, secret := range []string{"hunter2", "s3cret", "user"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q carries %q", err, secret)
		}
	}
}
