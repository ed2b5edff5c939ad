package gates

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestValidateRefusesWhatCannotNameACanary(t *testing.T) {
	good := Key{Namespace: "test", Name: "podinfo.v2"}
	if err := Validate(Gate, good); err != nil {
		t.Fatalf("Validate(%v) = %v, want nil", good, err)
	}
	for _, tc := range []struct {
		kind Kind
		key  Key
	}{
		{"other", good},
		{Gate, Key{Namespace: "", Name: "podinfo"}},
		{Gate, Key{Namespace: "test", Name: ""}},
		{Gate, Key{Namespace: "te.st", Name: "podinfo"}}, // a namespace is a DNS label: no dots
		{Gate, Key{Namespace: "test", Name: "Podinfo"}},
		{Rollback, Key{Namespace: "test", Name: "a_b"}},
		{Rollback, Key{Namespace: "test", Name: "../../etc"}},
		{Gate, Key{Namespace: "test", Name: strings.Repeat("a", 254)}},
	} {
		err := Validate(tc.kind, tc.key)
		if !errors.Is(err, ErrInvalidKey) || HTTPStatus(err) != http.StatusBadRequest {
			t.Errorf("Validate(%q, %+v) = %v, want ErrInvalidKey (400)", tc.kind, tc.key, err)
		}
	}
}

var configMapKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

func TestDataKeysAreValidConfigMapKeysAndDistinct(t *testing.T) {
	long := strings.Repeat("a", 240) + "." + strings.Repeat("b", 12) // a valid 253-character name
	keys := map[string]string{}
	for _, tc := range []struct {
		kind Kind
		key  Key
	}{
		{Gate, Key{"test", "podinfo"}},
		{Rollback, Key{"test", "podinfo"}},
		// name.namespace alone would be ambiguous ("a.b"+"c" vs "a"+"b.c"), but namespaces have no dots.
		{Gate, Key{"c", "a.b"}},
		{Gate, Key{"b-c", "a"}},
		{Gate, Key{"test", long}},
		{Gate, Key{"test2", long}},
		{Rollback, Key{"test", long}},
		{Gate, Key{strings.Repeat("n", 63), long}},
	} {
		if err := Validate(tc.kind, tc.key); err != nil {
			t.Fatalf("test case %+v is invalid: %v", tc, err)
		}
		k := dataKey(tc.kind, tc.key)
		if !configMapKey.MatchString(k) || len(k) > validation.DNS1123SubdomainMaxLength {
			t.Errorf("dataKey(%q, %v) = %q: not a valid ConfigMap key", tc.kind, tc.key, k)
		}
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			t.Errorf("dataKey(%q, %v) = %q: %v", tc.kind, tc.key, k, errs)
		}
		name := fmt.Sprintf("%s %v", tc.kind, tc.key)
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		keys[k] = name
	}
	if got := dataKey(Gate, Key{"test", "podinfo"}); got != "gate_podinfo.test" {
		t.Errorf("dataKey = %q, want the readable gate_podinfo.test", got)
	}
}

func TestChangeOpensClosesAndBounds(t *testing.T) {
	data, changed, err := change(nil, "gate_a.test", true, "t1", 2)
	if err != nil || !changed || data["gate_a.test"] != "t1" {
		t.Fatalf("opening: %v %v %v", data, changed, err)
	}
	// Opening an open gate keeps the time it was first opened.
	if again, changed, err := change(data, "gate_a.test", true, "t2", 2); err != nil || changed || again["gate_a.test"] != "t1" {
		t.Fatalf("reopening: %v %v %v", again, changed, err)
	}
	if _, changed, err := change(data, "gate_b.test", false, "t2", 2); err != nil || changed {
		t.Fatalf("closing a closed gate: %v %v", changed, err)
	}
	two, _, err := change(data, "gate_b.test", true, "t2", 2)
	if err != nil || len(two) != 2 || len(data) != 1 {
		t.Fatalf("opening a second gate: %v (input now %v) %v", two, data, err)
	}
	if _, _, err := change(two, "gate_c.test", true, "t3", 2); !errors.Is(err, ErrFull) || HTTPStatus(err) != http.StatusInsufficientStorage {
		t.Fatalf("opening beyond the bound: %v, want ErrFull (507)", err)
	}
	// Closing is always possible, and frees a place.
	one, changed, err := change(two, "gate_a.test", false, "t3", 2)
	if err != nil || !changed || len(one) != 1 || one["gate_b.test"] != "t2" {
		t.Fatalf("closing: %v %v %v", one, changed, err)
	}
	// The byte bound holds whatever the entry bound says.
	big := map[string]string{}
	for i := 0; dataSize(big) < maxDataBytes-200; i++ {
		big[fmt.Sprintf("gate_%0240d.test", i)] = "2026-01-02T03:04:05Z"
	}
	if _, _, err := change(big, "gate_"+strings.Repeat("x", 240)+".test", true, "2026-01-02T03:04:05Z", 1_000_000); !errors.Is(err, ErrFull) {
		t.Fatalf("opening beyond %d bytes: %v, want ErrFull", maxDataBytes, err)
	}
}

// The default bound keeps the worst case (the longest keys) under the API server's 1 MiB.
func TestDefaultBoundFitsAConfigMap(t *testing.T) {
	worst := DefaultMaxOpenGates * (validation.DNS1123SubdomainMaxLength + len("2006-01-02T15:04:05Z"))
	if worst > maxDataBytes || maxDataBytes >= 1<<20 {
		t.Fatalf("%d open gates may take %d bytes; the bound is %d, the API server's limit %d", DefaultMaxOpenGates, worst, maxDataBytes, 1<<20)
	}
}

func TestMemoryStore(t *testing.T) {
	testStoreSemantics(t, NewMemoryStore(0))
}

// testStoreSemantics is what every Store must do, per Flagger's load tester.
func testStoreSemantics(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	podinfo := Key{Namespace: "test", Name: "podinfo"}
	isOpen := func(kind Kind, k Key) bool {
		t.Helper()
		open, err := s.IsOpen(ctx, kind, k)
		if err != nil {
			t.Fatalf("IsOpen(%s, %v): %v", kind, k, err)
		}
		return open
	}
	set := func(kind Kind, k Key, open bool) {
		t.Helper()
		if err := s.Set(ctx, kind, k, open); err != nil {
			t.Fatalf("Set(%s, %v, %v): %v", kind, k, open, err)
		}
	}
	if isOpen(Gate, podinfo) || isOpen(Rollback, podinfo) {
		t.Fatal("gates must be closed until opened")
	}
	set(Gate, podinfo, true)
	if !isOpen(Gate, podinfo) {
		t.Fatal("the gate is closed after /gate/open")
	}
	if isOpen(Rollback, podinfo) {
		t.Fatal("opening the gate opened the rollback gate")
	}
	if isOpen(Gate, Key{Namespace: "prod", Name: "podinfo"}) || isOpen(Gate, Key{Namespace: "test", Name: "other"}) {
		t.Fatal("opening a gate opened another canary's")
	}
	set(Gate, podinfo, true) // idempotent
	set(Rollback, podinfo, true)
	set(Gate, podinfo, false)
	if isOpen(Gate, podinfo) || !isOpen(Rollback, podinfo) {
		t.Fatal("closing the gate must leave the rollback gate open")
	}
	set(Rollback, podinfo, false)
	if isOpen(Rollback, podinfo) {
		t.Fatal("the rollback gate is open after /rollback/close")
	}
	if _, err := s.IsOpen(ctx, Gate, Key{Namespace: "test", Name: "Bad Name"}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("IsOpen of an invalid name: %v, want ErrInvalidKey", err)
	}
	if err := s.Set(ctx, Gate, Key{Namespace: "", Name: "podinfo"}, true); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Set of an invalid namespace: %v, want ErrInvalidKey", err)
	}
}

func TestMemoryStoreBound(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(2)
	for _, name := range []string{"a", "b"} {
		if err := s.Set(ctx, Gate, Key{"test", name}, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, Gate, Key{"test", "c"}, true); !errors.Is(err, ErrFull) {
		t.Fatalf("third open gate: %v, want ErrFull", err)
	}
	// Checks of many unknown gates store nothing (Flagger's LoadOrStore grows its map on every check).
	for i := range 100 {
		if _, err := s.IsOpen(ctx, Gate, Key{"test", fmt.Sprintf("x%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, Gate, Key{"test", "a"}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, Gate, Key{"test", "c"}, true); err != nil {
		t.Fatalf("after closing one, opening another: %v", err)
	}
}
