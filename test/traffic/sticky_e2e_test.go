//go:build e2e

package traffic

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pennant/pennant/test/traffic/harness"
)

// session is one user: a cookie jar and the version and workload of each answer.
type session struct {
	versions []string
	canary   []bool
}

// runSessions sends requests as users with cookies (every 200ms, 20 requests each, then a new
// user) until ctx ends, 30 users at a time.
func runSessions(ctx context.Context, host string) func() []session {
	var mu sync.Mutex
	var done []session
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				jar, _ := cookiejar.New(nil)
				c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
				var s session
				for range 20 {
					if v, pod, ok := ask(ctx, c, host); ok {
						s.versions = append(s.versions, v)
						s.canary = append(s.canary, harness.IsCanaryPod("podinfo", pod))
					}
					select {
					case <-ctx.Done():
					case <-time.After(200 * time.Millisecond):
					}
				}
				mu.Lock()
				done = append(done, s)
				mu.Unlock()
			}
		}()
	}
	return func() []session { wg.Wait(); return done }
}

func ask(ctx context.Context, c *http.Client, host string) (version, pod string, ok bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+stack.Web+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "", "", false
	}
	resp.Body.Close()
	return resp.Header.Get("X-Version"), resp.Header.Get("X-Pod-Name"), resp.StatusCode == http.StatusOK
}

// Session affinity through Traefik: a TraefikService's sticky cookie (set by the user on the object
// Pennant generates, and kept by Pennant) holds each user on the version they got first while the
// weights move: no user sees the new version and then the old one again.
func TestStickySessionsThroughTraefik(t *testing.T) {
	ctx := context.Background()
	app := deployTraefikApp(t, "sticky", "examples/demo/traefik/canary.yaml")
	ts := &unstructured.Unstructured{}
	ts.SetGroupVersionKind(schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"})
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: "sticky", Name: "podinfo"}, ts); err != nil {
			return err
		}
		if err := unstructured.SetNestedField(ts.Object, "podinfo_sticky", "spec", "weighted", "sticky", "cookie", "name"); err != nil {
			return err
		}
		return stack.Client.Update(ctx, ts)
	}); err != nil {
		t.Fatal(err)
	}

	sessionsCtx, stopSessions := context.WithCancel(ctx)
	sessions := runSessions(sessionsCtx, "sticky.example.com")
	rep := release(t, app, harness.ReleaseOptions{Title: "podinfo 6.0.1 with sticky sessions", Edit: setImage("6.0.1")})
	stopSessions()
	all := sessions()
	if rep.Outcome != "Succeeded" {
		t.Fatalf("the release ended %s", rep.Outcome)
	}
	checkNoFailures(t, rep)
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: "sticky", Name: "podinfo"}, ts); err != nil {
		t.Fatal(err)
	}
	if name, _, _ := unstructured.NestedString(ts.Object, "spec", "weighted", "sticky", "cookie", "name"); name != "podinfo_sticky" {
		t.Errorf("the TraefikService's sticky cookie is %q after the release, want the user's podinfo_sticky kept", name)
	}
	flipped, onCanary, switchedWorkload, primaryRollout := 0, 0, 0, 0
	for _, s := range all {
		seenNew, newFromCanary := false, false
		for i, v := range s.versions {
			if v == "6.0.1" {
				seenNew, newFromCanary = true, newFromCanary || s.canary[i]
			} else if seenNew {
				if !newFromCanary && !s.canary[i] {
					// Both answers came from the primary while promotion rolled it out: the cookie
					// holds a user on a workload, not on one of its pods. Known gap (the note of
					// issue 15's session): the primary's rolling update is not hidden from its users.
					primaryRollout++
					break
				}
				flipped++
				t.Errorf("a user got 6.0.1 and then %s again: %v (from the canary: %v)", v, s.versions, s.canary)
				break
			}
			if i > 0 && s.canary[i] != s.canary[i-1] && s.versions[i] == s.versions[i-1] {
				switchedWorkload++ // the same version from the other workload: promotion moved the user
			}
		}
		if len(s.canary) > 0 && s.canary[0] {
			onCanary++
		}
	}
	t.Logf("%d sessions: %d started on the canary, %d moved between workloads of the same version (promotion), %d went back to the old version, %d saw both versions of the primary while it rolled out",
		len(all), onCanary, switchedWorkload, flipped, primaryRollout)
	if onCanary == 0 {
		t.Error("no session started on the canary")
	}
}
