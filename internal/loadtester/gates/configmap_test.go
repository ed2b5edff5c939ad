package gates

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pennant/pennant/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// requestCounter counts the API requests made through a rest.Config.
type requestCounter struct {
	n         atomic.Int64
	conflicts atomic.Int64 // responses 409 Conflict
	mu        sync.Mutex
	// last holds the latest requests, for failure messages.
	last []string
}

func (c *requestCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			c.n.Add(1)
			c.mu.Lock()
			c.last = append(c.last, r.Method+" "+r.URL.RequestURI())
			if len(c.last) > 20 {
				c.last = c.last[1:]
			}
			c.mu.Unlock()
			resp, err := rt.RoundTrip(r)
			if err == nil && resp.StatusCode == http.StatusConflict {
				c.conflicts.Add(1)
			}
			return resp, err
		})
	})
	return cfg
}

func (c *requestCounter) recent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.last...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// startStore starts a ConfigMapStore on namespace ns, as one replica of the load tester would; stop
// ends it, as a restart does (t's end stops it too).
func startStore(t *testing.T, cfg *rest.Config, ns string, opts ConfigMapOptions) (s *ConfigMapStore, stop func()) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Namespace = ns
	if opts.SyncTimeout == 0 {
		opts.SyncTimeout = 30 * time.Second
	}
	s, err = NewConfigMapStore(ctx, cs, opts)
	if err != nil {
		cancel()
		t.Fatalf("NewConfigMapStore: %v", err)
	}
	return s, cancel
}

func mustIsOpen(t *testing.T, s Store, kind Kind, k Key) bool {
	t.Helper()
	open, err := s.IsOpen(context.Background(), kind, k)
	if err != nil {
		t.Fatalf("IsOpen(%s, %v): %v", kind, k, err)
	}
	return open
}

func mustSet(t *testing.T, s Store, kind Kind, k Key, open bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Set(ctx, kind, k, open); err != nil {
		t.Fatalf("Set(%s, %v, %v): %v", kind, k, open, err)
	}
}

// gatesConfigMap reads the ConfigMap from the API server directly.
func gatesConfigMap(t *testing.T, env *testenv.Env, ns string) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultConfigMapName}, &cm); err != nil {
		t.Fatalf("reading the gates' ConfigMap: %v", err)
	}
	return &cm
}

var podinfo = Key{Namespace: "test", Name: "podinfo"}

func TestConfigMapStoreOpenCheckClose(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	s, _ := startStore(t, env.Config, ns, ConfigMapOptions{})
	testStoreSemantics(t, s)

	mustSet(t, s, Gate, podinfo, true)
	cm := gatesConfigMap(t, env, ns)
	if _, err := time.Parse(time.RFC3339, cm.Data["gate_podinfo.test"]); err != nil || len(cm.Data) != 1 {
		t.Fatalf("ConfigMap data %v: want gate_podinfo.test with the time it was opened, and nothing else", cm.Data)
	}
}

func TestConfigMapStoreSurvivesARestart(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	first, stop := startStore(t, env.Config, ns, ConfigMapOptions{})
	mustSet(t, first, Gate, podinfo, true)
	mustSet(t, first, Rollback, Key{Namespace: "prod", Name: "podinfo"}, true)
	stop()

	restarted, _ := startStore(t, env.Config, ns, ConfigMapOptions{})
	if !mustIsOpen(t, restarted, Gate, podinfo) {
		t.Error("the gate opened before the restart is closed after it")
	}
	if !mustIsOpen(t, restarted, Rollback, Key{Namespace: "prod", Name: "podinfo"}) {
		t.Error("the rollback gate opened before the restart is closed after it")
	}
	if mustIsOpen(t, restarted, Rollback, podinfo) {
		t.Error("a gate never opened is open after the restart")
	}
}

func TestConfigMapStoreReplicasShareGates(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	a, _ := startStore(t, env.Config, ns, ConfigMapOptions{})
	b, _ := startStore(t, env.Config, ns, ConfigMapOptions{})

	seen := func(s Store, open bool) func() (bool, string) {
		return func() (bool, string) {
			got := mustIsOpen(t, s, Gate, podinfo)
			return got == open, fmt.Sprintf("the other replica sees the gate open=%v, want %v", got, open)
		}
	}
	mustSet(t, a, Gate, podinfo, true)
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, seen(b, true))
	mustSet(t, b, Gate, podinfo, false)
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, seen(a, false))

	// Each replica reads its own writes at once, however far its cache lags, also right after the
	// other replica changed the gate.
	for i := range 20 {
		writer := []*ConfigMapStore{a, b}[i%2]
		open := i%3 != 0
		mustSet(t, writer, Gate, podinfo, open)
		if got := mustIsOpen(t, writer, Gate, podinfo); got != open {
			t.Fatalf("write %d: right after Set(open=%v) the same replica reads open=%v", i, open, got)
		}
	}
}

// Many gate changes at once, from two replicas, on the one ConfigMap: every update carries the
// resourceVersion it was based on, conflicts are retried, and none is lost. Rounds repeat (at most 5)
// until the API server has answered some update with a conflict, so that the retry path did run.
func TestConfigMapStoreConcurrentWritersLoseNoUpdate(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	var counter requestCounter
	a, _ := startStore(t, counter.wrap(env.Config), ns, ConfigMapOptions{})
	b, _ := startStore(t, counter.wrap(env.Config), ns, ConfigMapOptions{})
	const gates = 16
	wantOpen := func(round, i int) bool { return (i+round)%2 == 0 }
	for round := 0; round < 5 && (round < 2 || counter.conflicts.Load() == 0); round++ {
		// Each round closes the gates the round before opened and opens the others, concurrently.
		var wg sync.WaitGroup
		errs := make(chan error, gates)
		for i := range gates {
			wg.Go(func() {
				s := []*ConfigMapStore{a, b}[i%2]
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				k := Key{Namespace: "test", Name: fmt.Sprintf("app%d", i)}
				if err := s.Set(ctx, Gate, k, wantOpen(round, i)); err != nil {
					errs <- fmt.Errorf("round %d: Set(%v): %w", round, k, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		cm := gatesConfigMap(t, env, ns)
		for i := range gates {
			key := fmt.Sprintf("gate_app%d.test", i)
			if _, open := cm.Data[key]; open != wantOpen(round, i) {
				t.Errorf("round %d: %s open=%v after the concurrent writes, want %v (data: %v)", round, key, open, wantOpen(round, i), cm.Data)
			}
		}
		if t.Failed() {
			return
		}
	}
	if counter.conflicts.Load() == 0 {
		t.Fatal("no write met a conflict in 5 rounds: the test did not exercise the retries")
	}
	t.Logf("%d conflicts retried", counter.conflicts.Load())
}

func TestConfigMapStoreChecksMakeNoAPIRequests(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	var counter requestCounter
	s, _ := startStore(t, counter.wrap(env.Config), ns, ConfigMapOptions{})
	mustSet(t, s, Gate, podinfo, true)
	// Let the cache catch up with the write, so that the checks below read it, not the remembered copy.
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		s.current() // drops the remembered copy once the cache holds it
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.written == nil, "the cache has not caught up with the write"
	})

	before := counter.n.Load()
	for i := range 1000 {
		k := Key{Namespace: "test", Name: fmt.Sprintf("app%d", i%50)}
		if mustIsOpen(t, s, Gate, k) || mustIsOpen(t, s, Rollback, podinfo) || !mustIsOpen(t, s, Gate, podinfo) {
			t.Fatal("wrong answer from the cache")
		}
	}
	if n := counter.n.Load() - before; n != 0 {
		t.Fatalf("3000 checks made %d API requests, want none; latest: %v", n, counter.recent())
	}

	// A change costs a read and a write; a change to the state the gate is in only the read.
	before = counter.n.Load()
	mustSet(t, s, Gate, podinfo, false)
	if n := counter.n.Load() - before; n != 2 {
		t.Errorf("closing a gate made %d API requests, want 2 (get, update); latest: %v", n, counter.recent())
	}
	before = counter.n.Load()
	mustSet(t, s, Gate, podinfo, false)
	if n := counter.n.Load() - before; n != 1 {
		t.Errorf("closing a closed gate made %d API requests, want 1 (get); latest: %v", n, counter.recent())
	}
}

func TestConfigMapStoreIsBounded(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	s, _ := startStore(t, env.Config, ns, ConfigMapOptions{MaxOpenGates: 3})
	for i := range 3 {
		mustSet(t, s, Gate, Key{Namespace: "test", Name: fmt.Sprintf("app%d", i)}, true)
	}
	err := s.Set(context.Background(), Rollback, podinfo, true)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("opening a fourth gate: %v, want ErrFull", err)
	}
	if mustIsOpen(t, s, Rollback, podinfo) || len(gatesConfigMap(t, env, ns).Data) != 3 {
		t.Fatal("the refused gate was stored")
	}
	mustSet(t, s, Gate, Key{Namespace: "test", Name: "app0"}, false)
	mustSet(t, s, Rollback, podinfo, true)
}

// Someone deletes the ConfigMap: every gate is closed, and the next opening creates it again.
func TestConfigMapStoreConfigMapDeleted(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	s, _ := startStore(t, env.Config, ns, ConfigMapOptions{})
	mustSet(t, s, Gate, podinfo, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DefaultConfigMapName}}
	if err := env.Client.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		return !mustIsOpen(t, s, Gate, podinfo), "the gate is still open after its ConfigMap was deleted"
	})
	mustSet(t, s, Rollback, podinfo, true)
	if !mustIsOpen(t, s, Rollback, podinfo) || mustIsOpen(t, s, Gate, podinfo) {
		t.Fatal("after recreating the ConfigMap: wrong gates open")
	}
	if data := gatesConfigMap(t, env, ns).Data; len(data) != 1 {
		t.Fatalf("recreated ConfigMap data %v, want the rollback gate only", data)
	}
}
