package request

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseRoundTrip(t *testing.T) {
	in := Request{Action: Abort, Revision: "abc", Reason: "5xx", User: "alice", RequestedAt: "2026-03-01T12:00:00.000000001Z"}
	v, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(v)
	if err != nil || out != in {
		t.Fatalf("Parse(%s) = %+v, %v", v, out, err)
	}
}

func TestParseRefusesBadRequests(t *testing.T) {
	for _, v := range []string{`abort`, `{"action":"rollback","revision":"a"}`, `{"action":"abort"}`, `{"action":"abort","revision":"a","extra":1}`} {
		if _, err := Parse(v); err == nil {
			t.Errorf("Parse(%s) accepted", v)
		}
	}
}

func TestIDChangesWithTheValue(t *testing.T) {
	if ID(`{"a":1}`) == ID(`{"a":2}`) || ID(`{"a":1}`) != ID(`{"a":1}`) {
		t.Fatal("ID is not a function of the value")
	}
}

func TestManagerIsTheLatestOwnerOfTheAnnotation(t *testing.T) {
	at := func(m int) *metav1.Time { t := metav1.NewTime(time.Date(2026, 3, 1, 12, m, 0, 0, time.UTC)); return &t }
	owns := &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{"f:pennant.dev/request":{}}}}`)}
	other := &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:provider":{}}}`)}
	entries := []metav1.ManagedFieldsEntry{
		{Manager: "flux", Time: at(5), FieldsV1: other},
		{Manager: "kubectl-annotate", Time: at(1), FieldsV1: owns},
		{Manager: "kubectl-pennant", Time: at(3), FieldsV1: owns},
	}
	if got := Manager(entries); got != "kubectl-pennant" {
		t.Fatalf("Manager = %q", got)
	}
	if got := Manager(entries[:1]); got != "" {
		t.Fatalf("Manager without an owner = %q", got)
	}
}

func TestActor(t *testing.T) {
	for _, c := range [][3]string{{"alice", "kubectl-pennant", "alice (kubectl-pennant)"}, {"", "kubectl", "kubectl"}, {"bob", "", "bob"}, {"", "", Unknown}} {
		if got := Actor(c[0], c[1]); got != c[2] {
			t.Errorf("Actor(%q, %q) = %q", c[0], c[1], got)
		}
	}
}
