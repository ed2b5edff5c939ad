package webhooks

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestRedactURLDropsUserinfoAndQueryValues(t *testing.T) {
	got := RedactURL("https://user:s3cret@hooks.example.com/gate?token=abc123&x=1#frag")
	for _, secret := range []string{"s3cret", "user", "abc123", "frag"} {
		if strings.Contains(got, secret) {
			t.Fatalf("%q still contains %q", got, secret)
		}
	}
	if !strings.Contains(got, "hooks.example.com/gate") || !strings.Contains(got, "token=redacted") {
		t.Fatalf("redacted URL lost its identity: %q", got)
	}
}

func TestRedactURLWithoutSchemeHidesThePassword(t *testing.T) {
	if got := RedactURL("user:s3cret@hooks.example.com/gate"); strings.Contains(got, "s3cret") {
		t.Fatalf("%q still contains the password", got)
	}
}

func TestCallErrorHasNoQueryToken(t *testing.T) {
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	// Port 1 on loopback refuses connections: the transport error embeds the URL.
	hook := flaggerv1.CanaryWebhook{Name: "gate", URL: "http://admin:pw@127.0.0.1:1/gate?token=topsecret", Timeout: "2s"}
	err := NewCaller().Call(context.Background(), cd, hook, flaggerv1.CanaryPhaseProgressing, nil)
	if err == nil {
		t.Fatal("want a connection error")
	}
	for _, secret := range []string{"topsecret", "pw"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q leaks %q", err, secret)
		}
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1/gate") {
		t.Fatalf("error %q no longer says which webhook failed", err)
	}
}
