package server

import (
	"context"
	"net/http"
	"testing"

	"k8s.io/client-go/kubernetes"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/loadtester/gates"
	"github.com/pennant/pennant/internal/testenv"
)

// Gates kept in the ConfigMap (the load tester's default) survive a restart of the load tester:
// opened on one server, they are open on its successor, which can close them.
func TestGatesSurviveARestartWithTheConfigMapStore(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	start := func() (*testServer, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		store, err := gates.NewConfigMapStore(ctx, client, gates.ConfigMapOptions{Namespace: ns})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return startServer(t, Config{Gates: store, GateAuthorizer: gates.NewAuthorizer("")}), cancel
	}

	first, stopFirst := start()
	if err := first.call("/gate/check", flaggerv1.ConfirmRolloutHook, nil); err == nil {
		t.Fatal("a gate never opened is open")
	}
	for _, path := range []string{"/gate/open", "/rollback/open"} {
		if code, body := first.post(path, nil); code != http.StatusAccepted {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	if err := first.call("/gate/check", flaggerv1.ConfirmRolloutHook, nil); err != nil {
		t.Fatalf("the opened gate: %v", err)
	}
	first.stop()
	stopFirst()

	second, stopSecond := start()
	defer stopSecond()
	if err := second.call("/gate/check", flaggerv1.ConfirmRolloutHook, nil); err != nil {
		t.Fatalf("the gate after a restart: %v", err)
	}
	if err := second.call("/rollback/check", flaggerv1.RollbackHook, nil); err != nil {
		t.Fatalf("the rollback gate after a restart: %v", err)
	}
	if code, _ := second.post("/gate/close", nil); code != http.StatusAccepted {
		t.Fatalf("/gate/close answered %d", code)
	}
	if err := second.call("/gate/check", flaggerv1.ConfirmRolloutHook, nil); err == nil {
		t.Fatal("the gate closed after the restart is open")
	}
	if err := second.call("/rollback/check", flaggerv1.RollbackHook, nil); err != nil {
		t.Fatalf("closing the approval gate closed the rollback gate: %v", err)
	}
}
