// Package request is the format of the manual requests (promote, abort, retry, pause, resume) that
// kubectl pennant writes on a Canary and the controller honours.
//
// A request is the annotation pennant.dev/request, whose value is a JSON object:
//
//	{"action":"abort","revision":"<status.lastAppliedSpec>","reason":"5xx on checkout","user":"alice","requestedAt":"2026-03-01T12:00:00Z"}
//
// It is written by server-side apply with a field manager of its own (kubectl-pennant), so that the
// tools that own the spec (Flux, Helm, Argo CD) neither see drift nor revert it, and it needs no
// more than RBAC on canaries. It is bound to the revision it is for: a request for another one is
// stale and ignored. The controller records a request it handled in status.lastRequest under the
// request's ID, a hash of the annotation's value, in the same status write as its decision: a
// request is carried out once, also across a restart. The package has no I/O.
package request

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotation is the key of a request on a Canary.
const Annotation = "pennant.dev/request"

// FieldManager is the field manager kubectl pennant writes requests with.
const FieldManager = "kubectl-pennant"

// Action is what a request asks for.
type Action string

const (
	// Promote finishes the analysis now: the remaining steps are skipped and the release goes
	// through Promoting and Finalising as usual. Refused while the canary is not ready.
	Promote Action = "promote"
	// Abort rolls the release back now: all traffic to the primary, the canary scaled down, Failed.
	Abort Action = "abort"
	// Retry releases the last failed revision again, without a change to the target.
	Retry Action = "retry"
	// Pause holds the analysis at its current weight: no step advances, no check failure counts
	// and the progress deadline does not run.
	Pause Action = "pause"
	// Resume ends a pause: the next step is one interval later.
	Resume Action = "resume"
)

// Actions are the actions a request may ask for, in the order kubectl pennant lists them.
var Actions = []Action{Promote, Abort, Retry, Pause, Resume}

// Request is the value of the annotation.
type Request struct {
	// Action is promote, abort, retry, pause or resume.
	Action Action `json:"action"`
	// Revision is the revision the request is for: the canary's status.lastAppliedSpec when it
	// was made.
	Revision string `json:"revision"`
	// Reason says why, for the event, the log and the status.
	Reason string `json:"reason,omitempty"`
	// User is who asked, as the requester names itself (kubectl pennant: the kubeconfig
	// context's user).
	User string `json:"user,omitempty"`
	// RequestedAt is when the request was made (RFC 3339, kubectl pennant writes nanoseconds);
	// it also makes two requests of the same action for the same revision distinct.
	RequestedAt string `json:"requestedAt,omitempty"`
}

// Encode returns the annotation's value for r.
func Encode(r Request) (string, error) {
	b, err := json.Marshal(r)
	return string(b), err
}

// Parse reads an annotation's value.
func Parse(value string) (Request, error) {
	var r Request
	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("annotation %s is not a request: %w", Annotation, err)
	}
	if !slices.Contains(Actions, r.Action) {
		return Request{}, fmt.Errorf("annotation %s: unknown action %q (want one of %s)", Annotation, r.Action, actionList())
	}
	if r.Revision == "" {
		return Request{}, errors.New("annotation " + Annotation + ": no revision (the canary's status.lastAppliedSpec)")
	}
	return r, nil
}

func actionList() string {
	names := make([]string, len(Actions))
	for i, a := range Actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// ID identifies a request by the annotation's value: writing a new request (another action, reason
// or time) gives a new ID, re-reading the same one the same ID.
func ID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:8])
}

// Pending is a request on a canary that the controller has not handled yet.
type Pending struct {
	ID string
	Request
	// Actor is who asked, for events and the status: "alice (kubectl-pennant)".
	Actor string
	// Err is set when the annotation is not a valid request (Request is then empty).
	Err error
}

// Describe is the actor and the reason, for events and logs: "alice (kubectl-pennant): 5xx on checkout".
func (p Pending) Describe() string {
	if p.Reason == "" {
		return p.Actor
	}
	return p.Actor + ": " + p.Reason
}

// Unknown is the actor when neither a field manager nor a user is known.
const Unknown = "unknown"

// Actor names who asked: the request's user and the field manager that wrote the annotation.
func Actor(user, manager string) string {
	switch {
	case user != "" && manager != "":
		return user + " (" + manager + ")"
	case user != "":
		return user
	case manager != "":
		return manager
	}
	return Unknown
}

// Manager is the field manager that last set the annotation, from the object's managedFields
// (the entry with the latest time among those that own the annotation; "" when none does).
func Manager(entries []metav1.ManagedFieldsEntry) string {
	var name string
	var at time.Time
	for _, e := range entries {
		if e.FieldsV1 == nil || !ownsAnnotation(e.FieldsV1.Raw) {
			continue
		}
		t := time.Time{}
		if e.Time != nil {
			t = e.Time.Time
		}
		if name == "" || !t.Before(at) {
			name, at = e.Manager, t
		}
	}
	return name
}

// ownsAnnotation tells whether a managedFields entry's fieldsV1 holds the request annotation.
func ownsAnnotation(raw []byte) bool {
	var fields struct {
		Metadata struct {
			Annotations map[string]json.RawMessage `json:"f:annotations"`
		} `json:"f:metadata"`
	}
	if json.Unmarshal(raw, &fields) != nil {
		return false
	}
	_, ok := fields.Metadata.Annotations["f:"+Annotation]
	return ok
}
