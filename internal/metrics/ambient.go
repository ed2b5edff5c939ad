package metrics

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Ambient cloud credentials are the controller's own cloud identity: the GKE / GCE metadata
// server token (stackdriver) and the AWS environment, IRSA and container credentials
// (cloudwatch). A MetricTemplate names any address it likes, so these must never follow a
// template to a server its author controls: they are off unless Options.AllowAmbientCredentials
// is set, and even then they go only to the vendor's own API over verified HTTPS.

// ambientCredentialsFlag is the controller flag behind Options.AllowAmbientCredentials; refusals
// name it so that an operator knows what to turn on.
const ambientCredentialsFlag = "-enable-ambient-cloud-credentials"

// googleMonitoringHost is the only host that receives the metadata server's token.
const googleMonitoringHost = "monitoring.googleapis.com"

// awsRegionPattern is the shape of an AWS region name (us-east-1, cn-north-1, us-gov-west-1):
// a region with dots could otherwise move the CloudWatch host under another AWS service's
// domain, some of which (API Gateway, ELB) hand out names to any AWS customer.
var awsRegionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// awsVPCEndpointLabel is the first label of a CloudWatch interface VPC endpoint's DNS name
// (vpce-0123456789abcdef0-abcdefgh[-us-east-1a].monitoring.<region>.vpce.amazonaws.com).
var awsVPCEndpointLabel = regexp.MustCompile(`^vpce-[a-z0-9-]+$`)

// ambientRefusal says why ambient credentials may not be used for a template of provider whose
// secret lacks missing, at address u (sent with insecureSkipVerify), and nil when they may.
// vendorAPI names the hosts that may receive them, for the message; isVendorHost tells them
// apart. Ambient credentials need the option on, HTTPS with certificate verification and a
// vendor host: anything else could hand the controller's identity to whoever answers.
func (o Options) ambientRefusal(provider string, credentials map[string][]byte, missing string, u *url.URL, insecureSkipVerify bool, vendorAPI string, isVendorHost func(host string) bool) error {
	lacking := "the template has no credentials secret"
	if credentials != nil {
		lacking = "the template's credentials secret has no " + missing
	}
	if !o.AllowAmbientCredentials {
		return fmt.Errorf("%s: %s; ambient cloud credentials are disabled (%s)", provider, lacking, ambientCredentialsFlag)
	}
	if o.ambientTestHost != "" && u.Host == o.ambientTestHost {
		return nil
	}
	if u.Scheme != "https" || insecureSkipVerify || !hasDefaultHTTPSPort(u) || !isVendorHost(strings.ToLower(u.Hostname())) {
		return fmt.Errorf("%s: %s; ambient cloud credentials (%s) are sent only to %s over verified HTTPS, not to %q",
			provider, lacking, ambientCredentialsFlag, vendorAPI, redactURL(u))
	}
	return nil
}

// hasDefaultHTTPSPort is true when u names no port or 443.
func hasDefaultHTTPSPort(u *url.URL) bool {
	p := u.Port()
	return p == "" || p == "443"
}

// isGoogleMonitoringAPI is true for the Cloud Monitoring API host.
func isGoogleMonitoringAPI(host string) bool {
	return host == googleMonitoringHost
}

// isAWSMonitoringAPI is true for the CloudWatch API hosts of region: the public endpoint
// monitoring.<region>.amazonaws.com(.cn), its FIPS variant and interface VPC endpoints.
// Being under amazonaws.com is not enough: API Gateway (*.execute-api.<region>.amazonaws.com)
// and load balancers (*.elb.amazonaws.com) give any AWS customer a name there, with a valid
// certificate for the former.
func isAWSMonitoringAPI(region string) func(host string) bool {
	return func(host string) bool {
		if !awsRegionPattern.MatchString(region) {
			return false
		}
		rest, ok := strings.CutSuffix(host, "."+awsDNSSuffix(region))
		if !ok {
			return false
		}
		switch rest {
		case "monitoring." + region, "monitoring-fips." + region:
			return true
		}
		vpce, ok := strings.CutSuffix(rest, ".monitoring."+region+".vpce")
		return ok && awsVPCEndpointLabel.MatchString(vpce)
	}
}
