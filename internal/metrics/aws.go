package metrics

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// AWS request signing (Signature Version 4) and credentials, hand-written so the cloudwatch
// provider needs no AWS SDK. https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html

// awsCredentials is one set of AWS keys.
type awsCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time // zero: static keys
}

const (
	awsAmzDateFormat = "20060102T150405Z"
	awsAlgorithm     = "AWS4-HMAC-SHA256"
)

// signAWSv4 signs req (whose body is body) for service in region at time now: it sets
// X-Amz-Date, X-Amz-Security-Token (temporary credentials) and Authorization. The signed
// headers are host, content-type and every x-amz-* header.
func signAWSv4(req *http.Request, body []byte, creds awsCredentials, region, service string, now time.Time) {
	now = now.UTC()
	amzDate := now.Format(awsAmzDateFormat)
	req.Header.Set("X-Amz-Date", amzDate)
	if creds.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}

	headers := map[string]string{"host": awsTrimSpaces(host)}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if lk == "content-type" || strings.HasPrefix(lk, "x-amz-") {
			trimmed := make([]string, len(vs))
			for i, v := range vs {
				trimmed[i] = awsTrimSpaces(v)
			}
			headers[lk] = strings.Join(trimmed, ",")
		}
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonicalHeaders strings.Builder
	for _, k := range names {
		canonicalHeaders.WriteString(k + ":" + headers[k] + "\n")
	}
	signedHeaders := strings.Join(names, ";")

	payloadHash := sha256.Sum256(body)
	canonicalRequest := strings.Join([]string{
		req.Method,
		awsCanonicalURI(req.URL),
		awsCanonicalQuery(req.URL),
		canonicalHeaders.String(),
		signedHeaders,
		hex.EncodeToString(payloadHash[:]),
	}, "\n")

	day := now.Format("20060102")
	scope := day + "/" + region + "/" + service + "/aws4_request"
	crHash := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := awsAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])

	key := awsHMAC([]byte("AWS4"+creds.SecretAccessKey), day)
	key = awsHMAC(key, region)
	key = awsHMAC(key, service)
	key = awsHMAC(key, "aws4_request")
	signature := hex.EncodeToString(awsHMAC(key, stringToSign))

	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		awsAlgorithm, creds.AccessKeyID, scope, signedHeaders, signature))
}

func awsHMAC(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// awsTrimSpaces trims a header value and collapses its inner runs of spaces.
func awsTrimSpaces(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// awsEscape percent-encodes everything but the RFC 3986 unreserved characters.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func awsCanonicalURI(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	segments := strings.Split(u.Path, "/")
	for i, s := range segments {
		segments[i] = awsEscape(s)
	}
	return strings.Join(segments, "/")
}

func awsCanonicalQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return ""
	}
	values, _ := url.ParseQuery(u.RawQuery)
	pairs := make([]string, 0, len(values))
	for k, vs := range values {
		for _, v := range vs {
			pairs = append(pairs, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// awsCredentialSource yields credentials, refreshing temporary ones.
type awsCredentialSource interface {
	retrieve(ctx context.Context) (awsCredentials, error)
	String() string
}

type awsStaticCredentials struct {
	creds  awsCredentials
	origin string
}

func (s awsStaticCredentials) retrieve(context.Context) (awsCredentials, error) { return s.creds, nil }
func (s awsStaticCredentials) String() string                                   { return s.origin }

// AWS credential keys of the template's secret.
const (
	awsAccessKeyIDSecretKey     = "aws_access_key_id"
	awsSecretAccessKeySecretKey = "aws_secret_access_key"
	awsSessionTokenSecretKey    = "aws_session_token"
)

// awsCredentialChain picks where the credentials come from, in this order: the template's
// secret (aws_access_key_id, aws_secret_access_key, optional aws_session_token); the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); IRSA web identity
// (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, exchanged at STS); the ECS / EKS Pod Identity
// container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI). Shared config files
// and the EC2 instance metadata service are not supported. All but the first are the
// controller's ambient identity: when ambientRefusal is not nil they are not consulted and it is
// the error.
func awsCredentialChain(provider string, credentials map[string][]byte, region string, client *http.Client, ambientRefusal error) (awsCredentialSource, error) {
	id := optionalCredential(credentials, awsAccessKeyIDSecretKey)
	secret := optionalCredential(credentials, awsSecretAccessKeySecretKey)
	switch {
	case id != "" && secret != "":
		return awsStaticCredentials{
			creds:  awsCredentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: optionalCredential(credentials, awsSessionTokenSecretKey)},
			origin: "the template's secret",
		}, nil
	case id != "":
		return nil, fmt.Errorf("%s: the credentials secret has %q but no %q key", provider, awsAccessKeyIDSecretKey, awsSecretAccessKeySecretKey)
	case secret != "":
		return nil, fmt.Errorf("%s: the credentials secret has %q but no %q key", provider, awsSecretAccessKeySecretKey, awsAccessKeyIDSecretKey)
	}
	if ambientRefusal != nil {
		return nil, ambientRefusal
	}

	id = firstEnv("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")
	secret = firstEnv("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	if id != "" && secret != "" {
		return awsStaticCredentials{
			creds:  awsCredentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")},
			origin: "the AWS_ACCESS_KEY_ID environment variables",
		}, nil
	}

	if role, tokenFile := os.Getenv("AWS_ROLE_ARN"), os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"); role != "" && tokenFile != "" {
		stsURL := firstEnv("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL")
		if stsURL == "" {
			stsURL = "https://sts." + region + "." + awsDNSSuffix(region)
		}
		session := os.Getenv("AWS_ROLE_SESSION_NAME")
		if session == "" {
			session = fmt.Sprintf("pennant-%d", time.Now().UnixNano())
		}
		return &awsWebIdentity{client: client, stsURL: stsURL, roleARN: role, tokenFile: tokenFile, session: session}, nil
	}

	if full, rel := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"), os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); full != "" || rel != "" {
		endpoint := full
		if rel != "" {
			endpoint = "http://169.254.170.2" + rel
		}
		if err := checkContainerCredentialsURL(endpoint); err != nil {
			return nil, fmt.Errorf("%s: %w", provider, err)
		}
		return &awsContainerCredentials{
			client:    client,
			endpoint:  endpoint,
			tokenFile: os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
			token:     os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
		}, nil
	}

	return nil, fmt.Errorf("%s: no AWS credentials: put %q and %q in the template's secret, or give the pod AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an IRSA role (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) or EKS Pod Identity",
		provider, awsAccessKeyIDSecretKey, awsSecretAccessKeySecretKey)
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// awsDNSSuffix is the endpoint domain of a region's partition.
func awsDNSSuffix(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// checkContainerCredentialsURL allows https anywhere and http only to loopback and the
// ECS / EKS Pod Identity link-local agents, like the AWS SDKs.
func checkContainerCredentialsURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("container credentials URL %q: %w", raw, err)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme != "http" {
		return fmt.Errorf("container credentials URL %q must be http or https", raw)
	}
	host := u.Hostname()
	switch host {
	case "localhost", "169.254.170.2", "169.254.170.23", "fd00:ec2::23":
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("container credentials URL %q: plain http is only allowed to loopback or the ECS/EKS agent", raw)
}

// awsCache shares temporary credentials between provider instances (a provider is typically
// built for every analysis run) until five minutes before they expire.
var awsCache = struct {
	sync.Mutex
	m map[string]awsCredentials
}{m: map[string]awsCredentials{}}

const awsRefreshBefore = 5 * time.Minute

func awsCached(ctx context.Context, key string, fetch func(ctx context.Context) (awsCredentials, error)) (awsCredentials, error) {
	awsCache.Lock()
	c, ok := awsCache.m[key]
	awsCache.Unlock()
	if ok && time.Until(c.Expires) > awsRefreshBefore {
		return c, nil
	}
	c, err := fetch(ctx)
	if err != nil {
		return awsCredentials{}, err
	}
	awsCache.Lock()
	awsCache.m[key] = c
	awsCache.Unlock()
	return c, nil
}

// awsWebIdentity exchanges a projected service-account token for role credentials
// (STS AssumeRoleWithWebIdentity; the call itself is not signed).
type awsWebIdentity struct {
	client    *http.Client
	stsURL    string
	roleARN   string
	tokenFile string
	session   string
}

func (w *awsWebIdentity) String() string { return "IRSA role " + w.roleARN }

func (w *awsWebIdentity) retrieve(ctx context.Context) (awsCredentials, error) {
	return awsCached(ctx, "web-identity|"+w.stsURL+"|"+w.roleARN+"|"+w.tokenFile, w.fetch)
}

func (w *awsWebIdentity) fetch(ctx context.Context) (awsCredentials, error) {
	token, err := os.ReadFile(w.tokenFile)
	if err != nil {
		return awsCredentials{}, fmt.Errorf("reading the web identity token: %w", err)
	}
	form := url.Values{
		"Action":           {"AssumeRoleWithWebIdentity"},
		"Version":          {"2011-06-15"},
		"RoleArn":          {w.roleARN},
		"RoleSessionName":  {w.session},
		"WebIdentityToken": {strings.TrimSpace(string(token))},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(w.stsURL, "/")+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return awsCredentials{}, fmt.Errorf("building the STS request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	body, err := doRequest(ctx, w.client, w.client.Timeout, "sts", req)
	if err != nil {
		return awsCredentials{}, fmt.Errorf("AssumeRoleWithWebIdentity %s: %w", w.roleARN, err)
	}
	var res struct {
		Credentials struct {
			AccessKeyID     string    `xml:"AccessKeyId"`
			SecretAccessKey string    `xml:"SecretAccessKey"`
			SessionToken    string    `xml:"SessionToken"`
			Expiration      time.Time `xml:"Expiration"`
		} `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	}
	if err := xml.Unmarshal(body, &res); err != nil {
		return awsCredentials{}, fmt.Errorf("decoding the STS response: %w: %s", err, truncate(string(body)))
	}
	c := res.Credentials
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return awsCredentials{}, fmt.Errorf("the STS response has no credentials: %s", truncate(string(body)))
	}
	return awsCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expires: c.Expiration}, nil
}

// awsContainerCredentials reads credentials from the ECS task or EKS Pod Identity agent.
type awsContainerCredentials struct {
	client    *http.Client
	endpoint  string
	tokenFile string
	token     string
}

func (c *awsContainerCredentials) String() string { return "the container credentials endpoint" }

func (c *awsContainerCredentials) retrieve(ctx context.Context) (awsCredentials, error) {
	return awsCached(ctx, "container|"+c.endpoint+"|"+c.tokenFile, c.fetch)
}

func (c *awsContainerCredentials) fetch(ctx context.Context) (awsCredentials, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint, nil)
	if err != nil {
		return awsCredentials{}, fmt.Errorf("building the container credentials request: %w", err)
	}
	token := c.token
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return awsCredentials{}, fmt.Errorf("reading the container authorization token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	req.Header.Set("Accept", "application/json")
	body, err := doRequest(ctx, c.client, c.client.Timeout, "container credentials", req)
	if err != nil {
		return awsCredentials{}, err
	}
	var res struct {
		AccessKeyID     string    `json:"AccessKeyId"`
		SecretAccessKey string    `json:"SecretAccessKey"`
		Token           string    `json:"Token"`
		Expiration      time.Time `json:"Expiration"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return awsCredentials{}, fmt.Errorf("decoding the container credentials: %w", err)
	}
	if res.AccessKeyID == "" || res.SecretAccessKey == "" {
		return awsCredentials{}, fmt.Errorf("the container credentials endpoint returned no keys")
	}
	return awsCredentials{AccessKeyID: res.AccessKeyID, SecretAccessKey: res.SecretAccessKey, SessionToken: res.Token, Expires: res.Expiration}, nil
}
