//go:build e2e

package crash

import (
	"net/http"
	"testing"
	"time"

	"github.com/pennant/pennant/internal/testenv"
)

// The real binary runs against the apiserver only through the proxy, and a SIGKILL ends it.
func TestPennantRunsThroughTheProxyAndDiesOnKill(t *testing.T) {
	testenv.Start(t)
	c := newController(t, buildPennant(t), "default")
	c.Start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + c.HealthAddress() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && c.Proxy.Requests() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pennant not healthy through the proxy after 60s (err %v, %d proxied requests)", err, c.Proxy.Requests())
		}
		time.Sleep(200 * time.Millisecond)
	}
	exited := c.Exited()
	c.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("pennant still running after SIGKILL")
	}
}
