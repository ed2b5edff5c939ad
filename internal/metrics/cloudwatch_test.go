package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The AWS SigV4 test suite (aws-sig-v4-test-suite): fixed keys, time and published signatures.
func TestSignAWSv4TestSuite(t *testing.T) {
	creds := awsCredentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	cases := []struct {
		name, method, url, contentType, body, sessionToken, signedHeaders, signature string
	}{
		{"get-vanilla", "GET", "https://example.amazonaws.com/", "", "", "", "host;x-amz-date",
			"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", "", "", "", "host;x-amz-date",
			"b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"post-vanilla", "POST", "https://example.amazonaws.com/", "", "", "", "host;x-amz-date",
			"5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"post-x-www-form-urlencoded", "POST", "https://example.amazonaws.com/", "application/x-www-form-urlencoded", "Param1=value1", "", "content-type;host;x-amz-date",
			"ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
		{"post-x-www-form-urlencoded-parameters", "POST", "https://example.amazonaws.com/", "application/x-www-form-urlencoded; charset=utf8", "Param1=value1", "", "content-type;host;x-amz-date",
			"1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
		{"post-sts-header-before", "POST", "https://example.amazonaws.com/", "", "",
			"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==",
			"host;x-amz-date;x-amz-security-token", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			c := creds
			c.SessionToken = tc.sessionToken
			signAWSv4(req, []byte(tc.body), c, "us-east-1", "service", at)
			want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" +
				tc.signedHeaders + ", Signature=" + tc.signature
			mustEqual(t, "authorization", req.Header.Get("Authorization"), want)
			mustEqual(t, "x-amz-date", req.Header.Get("X-Amz-Date"), "20150830T123600Z")
		})
	}
}

// clearAWSEnv hides the machine's AWS configuration from a test.
func clearAWSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
}

var (
	cloudWatchClock = time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC) // 1700000000
	cloudWatchCreds = map[string][]byte{
		"aws_access_key_id":     []byte("AKIAEXAMPLE"),
		"aws_secret_access_key": []byte("c2VjcmV0\n"),
		"aws_session_token":     []byte("FwoGZXIvYXdzEXAMPLE"),
	}
)

const (
	cloudWatchQueryJSON = `[
	  {"id": "e1", "expression": "m1 / m2 * 100", "label": "error rate"},
	  {"Id": "m1", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count",
	    "Dimensions": [{"Name": "TargetGroup", "Value": "targetgroup/podinfo-canary/6d0ecf831eec9f09"}]}, "Period": 60, "Stat": "Sum"}},
	  {"Id": "m2", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount",
	    "Dimensions": [{"Name": "TargetGroup", "Value": "targetgroup/podinfo-canary/6d0ecf831eec9f09"}]}, "Period": 60, "Stat": "Sum"}}
	]`
	cloudWatchOneResult = `{"MetricDataResults":[{"Id":"e1","Label":"error rate","StatusCode":"Complete",
	  "Timestamps":[1.69999998E9,1.69999992E9,1.69999986E9],"Values":[1.25,0.5,0.0]}],"Messages":[]}`
)

func newTestCloudWatch(t *testing.T, address string, creds map[string][]byte, opts Options) *cloudWatchProvider {
	t.Helper()
	p, err := newCloudWatch(flaggerv1.MetricTemplateProvider{Type: TypeCloudWatch, Address: address, Region: "eu-west-1"}, creds, opts.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return cloudWatchClock }
	return p
}

// checkSignature re-signs what the server received and compares the Authorization header.
func checkSignature(t *testing.T, r recorded, host string, creds awsCredentials) {
	t.Helper()
	req, _ := http.NewRequest(r.Method, "http://"+host+r.Path, nil)
	for _, k := range []string{"Content-Type", "X-Amz-Target", "X-Amz-Security-Token"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	signAWSv4(req, []byte(r.Body), creds, "eu-west-1", "monitoring", cloudWatchClock)
	mustEqual(t, "signature", r.Header.Get("Authorization"), req.Header.Get("Authorization"))
}

func TestCloudWatchRequestShape(t *testing.T) {
	clearAWSEnv(t)
	srv := newBackend(t, reply(http.StatusOK, cloudWatchContentType, cloudWatchOneResult))
	p := newTestCloudWatch(t, srv.URL, cloudWatchCreds, Options{Interval: time.Minute})
	v, err := p.RunQuery(context.Background(), cloudWatchQueryJSON)
	mustValue(t, v, err, 1.25) // the newest value

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodPost)
	mustEqual(t, "path", r.Path, "/")
	mustEqual(t, "content type", r.Header.Get("Content-Type"), "application/x-amz-json-1.0")
	mustEqual(t, "target", r.Header.Get("X-Amz-Target"), "GraniteServiceVersion20100801.GetMetricData")
	mustEqual(t, "x-amz-date", r.Header.Get("X-Amz-Date"), "20231114T221320Z")
	mustEqual(t, "security token", r.Header.Get("X-Amz-Security-Token"), "FwoGZXIvYXdzEXAMPLE")
	if !strings.HasPrefix(r.Header.Get("Authorization"),
		"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20231114/eu-west-1/monitoring/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=") {
		t.Fatalf("authorization = %q", r.Header.Get("Authorization"))
	}
	checkSignature(t, r, strings.TrimPrefix(srv.URL, "http://"), awsCredentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "c2VjcmV0", SessionToken: "FwoGZXIvYXdzEXAMPLE"})

	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "StartTime", body["StartTime"], any(float64(1700000000-600)))
	mustEqual(t, "EndTime", body["EndTime"], any(float64(1700000000)))
	mustEqual(t, "MaxDatapoints", body["MaxDatapoints"], any(float64(20)))
	mustEqual(t, "ScanBy", body["ScanBy"], any("TimestampDescending"))
	queries, _ := json.Marshal(body["MetricDataQueries"])
	want := `[{"Expression":"m1 / m2 * 100","Id":"e1","Label":"error rate"},` +
		`{"Id":"m1","MetricStat":{"Metric":{"Dimensions":[{"Name":"TargetGroup","Value":"targetgroup/podinfo-canary/6d0ecf831eec9f09"}],"MetricName":"HTTPCode_Target_5XX_Count","Namespace":"AWS/ApplicationELB"},"Period":60,"Stat":"Sum"},"ReturnData":false},` +
		`{"Id":"m2","MetricStat":{"Metric":{"Dimensions":[{"Name":"TargetGroup","Value":"targetgroup/podinfo-canary/6d0ecf831eec9f09"}],"MetricName":"RequestCount","Namespace":"AWS/ApplicationELB"},"Period":60,"Stat":"Sum"},"ReturnData":false}]`
	mustEqual(t, "MetricDataQueries (member names normalised)", string(queries), want)
}

func TestCloudWatchEnvironmentCredentials(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	srv := newBackend(t, reply(http.StatusOK, cloudWatchContentType, cloudWatchOneResult))
	p := newTestCloudWatch(t, srv.URL, nil, loopbackAmbient(srv.URL)) // the loopback server stands for CloudWatch
	v, err := p.RunQuery(context.Background(), cloudWatchQueryJSON)
	mustValue(t, v, err, 1.25)
	r := srv.last(t)
	mustEqual(t, "no session token", r.Header.Get("X-Amz-Security-Token"), "")
	checkSignature(t, r, strings.TrimPrefix(srv.URL, "http://"), awsCredentials{AccessKeyID: "AKIAENV", SecretAccessKey: "env-secret"})
}

func TestCloudWatchWebIdentityCredentials(t *testing.T) {
	clearAWSEnv(t)
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	sts := newBackend(t, reply(http.StatusOK, "text/xml", `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:pennant:pennant</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/pennant/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <SessionToken>IRSA-SESSION-TOKEN</SessionToken>
      <SecretAccessKey>irsa-secret</SecretAccessKey>
      <Expiration>`+expires+`</Expiration>
      <AccessKeyId>ASIAIRSA</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("eyJhbGciOiJSUzI1NiJ9.projected.token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pennant")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ROLE_SESSION_NAME", "pennant-test")
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	cw := newBackend(t, reply(http.StatusOK, cloudWatchContentType, cloudWatchOneResult))
	p := newTestCloudWatch(t, cw.URL, nil, loopbackAmbient(cw.URL)) // the loopback server stands for CloudWatch
	for range 2 {                                                   // the second query reuses the cached credentials
		v, err := p.RunQuery(context.Background(), cloudWatchQueryJSON)
		mustValue(t, v, err, 1.25)
	}
	mustEqual(t, "STS calls", len(sts.requests()), 1)
	s := sts.last(t)
	mustEqual(t, "STS method", s.Method, http.MethodPost)
	mustEqual(t, "STS path", s.Path, "/")
	form, _ := url.ParseQuery(s.Body)
	mustEqual(t, "Action", form.Get("Action"), "AssumeRoleWithWebIdentity")
	mustEqual(t, "Version", form.Get("Version"), "2011-06-15")
	mustEqual(t, "RoleArn", form.Get("RoleArn"), "arn:aws:iam::123456789012:role/pennant")
	mustEqual(t, "RoleSessionName", form.Get("RoleSessionName"), "pennant-test")
	mustEqual(t, "WebIdentityToken", form.Get("WebIdentityToken"), "eyJhbGciOiJSUzI1NiJ9.projected.token")
	mustEqual(t, "STS is unsigned", s.Header.Get("Authorization"), "")

	r := cw.last(t)
	mustEqual(t, "security token", r.Header.Get("X-Amz-Security-Token"), "IRSA-SESSION-TOKEN")
	checkSignature(t, r, strings.TrimPrefix(cw.URL, "http://"), awsCredentials{AccessKeyID: "ASIAIRSA", SecretAccessKey: "irsa-secret", SessionToken: "IRSA-SESSION-TOKEN"})
}

func TestCloudWatchContainerCredentials(t *testing.T) {
	clearAWSEnv(t)
	agent := newBackend(t, reply(http.StatusOK, "application/json",
		`{"AccessKeyId":"ASIAPOD","SecretAccessKey":"pod-secret","Token":"POD-TOKEN","AccountId":"123456789012","Expiration":"`+
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`))
	tokenFile := filepath.Join(t.TempDir(), "eks-pod-identity-token")
	if err := os.WriteFile(tokenFile, []byte("pod-identity-jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.URL+"/v1/credentials")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)

	cw := newBackend(t, reply(http.StatusOK, cloudWatchContentType, cloudWatchOneResult))
	p := newTestCloudWatch(t, cw.URL, nil, loopbackAmbient(cw.URL)) // the loopback server stands for CloudWatch
	v, err := p.RunQuery(context.Background(), cloudWatchQueryJSON)
	mustValue(t, v, err, 1.25)
	a := agent.last(t)
	mustEqual(t, "agent path", a.Path, "/v1/credentials")
	mustEqual(t, "agent authorization", a.Header.Get("Authorization"), "pod-identity-jwt")
	checkSignature(t, cw.last(t), strings.TrimPrefix(cw.URL, "http://"), awsCredentials{AccessKeyID: "ASIAPOD", SecretAccessKey: "pod-secret", SessionToken: "POD-TOKEN"})

	mustContain(t, checkContainerCredentialsURL("http://example.com/creds"), "only allowed")
	if err := checkContainerCredentialsURL("http://169.254.170.23/v1/credentials"); err != nil {
		t.Fatal(err)
	}
}

func TestCloudWatchIsOnline(t *testing.T) {
	clearAWSEnv(t)
	cases := []struct {
		name   string
		status int
		body   string
		online bool
	}{
		{name: "validation error", status: 400, body: `{"__type":"com.amazonaws.cloudwatch#InvalidParameterValueException","message":"The parameter MetricDataQueries is required."}`, online: true},
		{name: "coral validation", status: 400, body: `{"__type":"com.amazon.coral.validate#ValidationException","message":"1 validation error detected"}`, online: true},
		{name: "bad token", status: 400, body: `{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}`},
		{name: "bad signature", status: 403, body: `{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"The request signature we calculated does not match the signature you provided."}`},
		{name: "not authorized", status: 400, body: `{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: cloudwatch:GetMetricData"}`},
		{name: "server error", status: 500, body: `{"__type":"com.amazonaws.cloudwatch#InternalServiceFault","message":"Internal failure"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(tc.status, cloudWatchContentType, tc.body))
			p := newTestCloudWatch(t, srv.URL, cloudWatchCreds, Options{})
			ok, err := p.IsOnline(context.Background())
			mustEqual(t, "online", ok, tc.online)
			if tc.online != (err == nil) {
				t.Fatalf("IsOnline error = %v", err)
			}
			r := srv.last(t)
			mustEqual(t, "target", r.Header.Get("X-Amz-Target"), cloudWatchTarget)
			var body map[string]any
			_ = json.Unmarshal([]byte(r.Body), &body)
			mustEqual(t, "no queries", len(body["MetricDataQueries"].([]any)), 0)
		})
	}
}

func TestCloudWatchResults(t *testing.T) {
	clearAWSEnv(t)
	cases := []struct {
		name   string
		status int
		body   string
		is     error
		msg    string
	}{
		{name: "no result", status: 200, body: `{"MetricDataResults":[],"Messages":[]}`, is: ErrNoValuesFound},
		{name: "no datapoint", status: 200, body: `{"MetricDataResults":[{"Id":"e1","StatusCode":"Complete","Timestamps":[],"Values":[]}]}`, is: ErrNoValuesFound},
		{name: "two results", status: 200, body: `{"MetricDataResults":[{"Id":"m1","Values":[1]},{"Id":"m2","Values":[2]}]}`, is: ErrMultipleValuesReturned, msg: "[m1 m2]"},
		{name: "forbidden result", status: 200, body: `{"MetricDataResults":[{"Id":"m1","StatusCode":"Forbidden","Values":[]}],"Messages":[{"Code":"Forbidden","Value":"cross-account"}]}`, msg: "Forbidden"},
		{name: "HTTP 400", status: 400, body: `{"__type":"com.amazonaws.cloudwatch#InvalidParameterValueException","message":"The value m1 / x for parameter MetricDataQueries.member.1.Expression is invalid."}`, msg: "InvalidParameterValue"},
		{name: "HTTP 500", status: 500, body: `internal failure`, msg: "internal failure"},
		{name: "malformed JSON", status: 200, body: `{"MetricDataResults":[{"Id":`, msg: "decoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(tc.status, cloudWatchContentType, tc.body))
			p := newTestCloudWatch(t, srv.URL, cloudWatchCreds, Options{})
			_, err := p.RunQuery(context.Background(), cloudWatchQueryJSON)
			if tc.is != nil {
				mustErrorIs(t, err, tc.is)
			} else {
				mustPlainError(t, err)
			}
			if tc.msg != "" {
				mustContain(t, err, tc.msg)
			}
			if tc.status >= 400 {
				mustStatus(t, err, tc.status, "")
			}
		})
	}
	t.Run("bad query", func(t *testing.T) {
		p := newTestCloudWatch(t, "http://127.0.0.1:1", cloudWatchCreds, Options{})
		for _, q := range []string{`{"Id":"m1"}`, `[]`, `[{"Id":"m1","Expresion":"x"}]`} {
			_, err := p.RunQuery(context.Background(), q)
			mustContain(t, err, "cloudwatch: the query")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestCloudWatch(t, srv.URL, cloudWatchCreds, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, cloudWatchQueryJSON); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestCloudWatch(t, srv.URL, cloudWatchCreds, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, cloudWatchQueryJSON); return err })
	})
}

func TestCloudWatchConfig(t *testing.T) {
	clearAWSEnv(t)
	_, err := New(flaggerv1.MetricTemplateProvider{Type: TypeCloudWatch}, "", cloudWatchCreds)
	mustContain(t, err, "region")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeCloudWatch, Region: "eu-west-1"}, "", nil)
	mustContain(t, err, "no credentials secret", "ambient cloud credentials are disabled (-enable-ambient-cloud-credentials)")
	_, err = NewWithOptions(flaggerv1.MetricTemplateProvider{Type: TypeCloudWatch, Region: "eu-west-1"}, "", nil, Options{AllowAmbientCredentials: true})
	mustContain(t, err, "aws_access_key_id", "aws_secret_access_key", "AWS_ROLE_ARN")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeCloudWatch, Region: "eu-west-1"}, "", map[string][]byte{"aws_access_key_id": []byte("x")})
	mustContain(t, err, `no "aws_secret_access_key" key`)

	p, err := newCloudWatch(flaggerv1.MetricTemplateProvider{Type: TypeCloudWatch, Region: "cn-north-1"}, cloudWatchCreds, Options{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "default endpoint", p.endpoint.String(), "https://monitoring.cn-north-1.amazonaws.com.cn/")
	mustEqual(t, "window", p.window, 10*time.Minute)
}
