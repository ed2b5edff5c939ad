package metrics

import (
	"strings"
	"testing"
)

// Addresses in errors never carry passwords, keys in query strings or fragments.
func TestAddressErrorsAreRedacted(t *testing.T) {
	for _, address := range []string{
		"ftp://user:s3cr3t@host/?api_key=s3cr3t",
		"http://user:s3cr3t@%zz/?api_key=s3cr3t",
		"user:s3cr3t@host?api_key=s3cr3t#s3cr3t",
	} {
		_, err := baseURL(TypePrometheus, address)
		if err == nil {
			t.Fatalf("%q accepted", address)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error for %q leaks the secret: %v", address, err)
		}
	}
	if got := RedactAddress("https://u:p@h:9090/x?key=k#f"); got != "https://h:9090/x" {
		t.Errorf("redactAddress = %q", got)
	}
}
