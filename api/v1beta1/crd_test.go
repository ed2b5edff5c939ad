package v1beta1_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// strict makes the API server refuse unknown fields instead of dropping them.
var strict = client.FieldValidation("Strict")

// TestFlaggerManifestsAccepted creates Flagger's own example manifests and the manifests of the seed
// guide: Pennant's CRDs must take them as they are, without dropping or rewriting a field.
func TestFlaggerManifestsAccepted(t *testing.T) {
	env := testenv.Start(t)
	files, err := filepath.Glob("testdata/examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seeds, err := filepath.Glob("testdata/seeds/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, seeds...)
	if len(files) < 8 {
		t.Fatalf("found only %d testdata files: %v", len(files), files)
	}
	var canaries int
	for _, file := range files {
		for i, obj := range readObjects(t, file) {
			if obj.GetKind() == flaggerv1.CanaryKind {
				canaries++
			}
			t.Run(fmt.Sprintf("%s#%d_%s", filepath.Base(file), i, obj.GetKind()), func(t *testing.T) {
				ns := env.NewNamespace(t)
				want := obj.DeepCopy()
				obj.SetNamespace(ns)
				if err := env.Client.Create(t.Context(), obj, strict); err != nil {
					t.Fatalf("%s %s refused: %v", obj.GetKind(), obj.GetName(), err)
				}
				if obj.GroupVersionKind().Group != flaggerv1.GroupVersion.Group {
					return // built-in kinds are normalised by the server (e.g. cpu 2000m -> 2)
				}
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(obj.GroupVersionKind())
				if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), got); err != nil {
					t.Fatal(err)
				}
				if diffs := missingFrom(want.Object["spec"], got.Object["spec"]); len(diffs) > 0 {
					t.Errorf("the stored spec differs from the manifest:\n  %s", strings.Join(diffs, "\n  "))
				}
			})
		}
	}
	if canaries < 6 {
		t.Errorf("found %d Canary documents, want at least 6 (5 Flagger examples and the seed guide's)", canaries)
	}
}

// TestExamplesUnmodified keeps testdata/examples byte-identical to Flagger's files (testdata/README.md
// names them) and the seed manifests to the cuts of the guide.
func TestExamplesUnmodified(t *testing.T) {
	testenv.VerifyDigests(t, "api/v1beta1/testdata/examples", ".yaml")
	testenv.VerifyDigests(t, "api/v1beta1/testdata/seeds", ".yaml")
}

const validCanary = `
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    webhooks:
    - name: load-test
      type: rollout
      url: http://127.0.0.1:8080/
`

// TestCanarySchemaRejects checks that the CRD schema turns away invalid canaries with a message that
// names the field and the rule.
func TestCanarySchemaRejects(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)

	base := parseObject(t, validCanary)
	base.SetNamespace(ns)
	if err := env.Client.Create(t.Context(), base.DeepCopy(), client.DryRunAll, strict); err != nil {
		t.Fatalf("the valid base canary is refused: %v", err)
	}

	cases := []struct {
		name   string
		mutate func(t *testing.T, o map[string]any)
		want   []string // fragments of the error message
	}{{
		name:   "stepWeight and iterations",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, int64(10), "spec", "analysis", "iterations") },
		want:   []string{"spec.analysis", "exactly one of iterations, stepWeight or stepWeights"},
	}, {
		name:   "no analysis",
		mutate: func(t *testing.T, o map[string]any) { unstructured.RemoveNestedField(o, "spec", "analysis") },
		want:   []string{"spec", "spec.analysis is required"},
	}, {
		name: "analysis without interval",
		mutate: func(t *testing.T, o map[string]any) {
			unstructured.RemoveNestedField(o, "spec", "analysis", "interval")
		},
		want: []string{"spec.analysis", "analysis requires interval and threshold"},
	}, {
		name:   "unknown provider",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, "ambassador", "spec", "provider") },
		want:   []string{"spec.provider", `Unsupported value: "ambassador"`},
	}, {
		name:   "targetRef kind outside the enum",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, "StatefulSet", "spec", "targetRef", "kind") },
		want:   []string{"spec.targetRef.kind", `Unsupported value: "StatefulSet"`},
	}, {
		name: "webhook type outside the enum",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, []any{map[string]any{"name": "x", "type": "pre-flight", "url": "http://127.0.0.1/"}},
				"spec", "analysis", "webhooks")
		},
		want: []string{"spec.analysis.webhooks[0].type", `Unsupported value: "pre-flight"`},
	}, {
		name:   "maxWeight as a string",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, "50", "spec", "analysis", "maxWeight") },
		want:   []string{"spec.analysis.maxWeight", "must be of type integer"},
	}, {
		name:   "negative stepWeight",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, int64(-5), "spec", "analysis", "stepWeight") },
		want:   []string{"spec.analysis.stepWeight", "greater than or equal to 0"},
	}, {
		name:   "negative threshold",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, int64(-1), "spec", "analysis", "threshold") },
		want:   []string{"spec.analysis.threshold", "greater than or equal to 0"},
	}, {
		name:   "mirrorWeight above 100",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, int64(101), "spec", "analysis", "mirrorWeight") },
		want:   []string{"spec.analysis.mirrorWeight", "less than or equal to 100"},
	}, {
		name: "a zero step in stepWeights",
		mutate: func(t *testing.T, o map[string]any) {
			unstructured.RemoveNestedField(o, "spec", "analysis", "stepWeight")
			set(t, o, []any{int64(0), int64(50)}, "spec", "analysis", "stepWeights")
		},
		want: []string{"spec.analysis.stepWeights[0]", "greater than or equal to 1"},
	}, {
		name: "the same rules under canaryAnalysis",
		mutate: func(t *testing.T, o map[string]any) {
			renameAnalysis(t, o)
			set(t, o, int64(3), "spec", "canaryAnalysis", "iterations")
		},
		want: []string{"spec.canaryAnalysis", "exactly one of iterations, stepWeight or stepWeights"},
	}, {
		name: "stepWeight 0 with a provider that splits traffic",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "istio", "spec", "provider")
			set(t, o, int64(0), "spec", "analysis", "stepWeight")
		},
		want: []string{"spec.analysis", neverAdvances},
	}, {
		name: "iterations 0 with a provider that splits traffic",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "linkerd", "spec", "provider")
			unstructured.RemoveNestedField(o, "spec", "analysis", "stepWeight")
			set(t, o, int64(0), "spec", "analysis", "iterations")
		},
		want: []string{"spec.analysis", neverAdvances},
	}, {
		name: "empty stepWeights with a provider that splits traffic",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "gloo", "spec", "provider")
			unstructured.RemoveNestedField(o, "spec", "analysis", "stepWeight")
			set(t, o, []any{}, "spec", "analysis", "stepWeights")
		},
		want: []string{"spec.analysis", neverAdvances},
	}, {
		name: "stepWeight 0 under canaryAnalysis",
		mutate: func(t *testing.T, o map[string]any) {
			renameAnalysis(t, o)
			set(t, o, "istio", "spec", "provider")
			set(t, o, int64(0), "spec", "canaryAnalysis", "stepWeight")
		},
		want: []string{"spec.canaryAnalysis", neverAdvances},
	}, {
		name:   "interval without the unit of its last number",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, "1m30", "spec", "analysis", "interval") },
		want:   []string{"spec.analysis.interval", notDuration},
	}, {
		name:   "interval with a trailing word",
		mutate: func(t *testing.T, o map[string]any) { set(t, o, "1mins", "spec", "analysis", "interval") },
		want:   []string{"spec.analysis.interval", notDuration},
	}, {
		name: "interval beyond a Go duration's range",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "9999999999999999999s", "spec", "analysis", "interval")
		},
		want: []string{"spec.analysis.interval", "conversion error", notDuration},
	}, {
		name: "interval longer than 64 characters",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "1m"+strings.Repeat("0s", 32), "spec", "analysis", "interval")
		},
		want: []string{"spec.analysis.interval", "Too long"},
	}, {
		name: "metric interval that is no duration",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, []any{map[string]any{"name": "request-success-rate", "interval": "30s5"}}, "spec", "analysis", "metrics")
		},
		want: []string{"spec.analysis.metrics[0].interval", notDuration},
	}, {
		name:   "webhook timeout that is no duration",
		mutate: func(t *testing.T, o map[string]any) { setWebhookField(t, o, "analysis", "timeout", "5sec") },
		want:   []string{"spec.analysis.webhooks[0].timeout", notDuration},
	}, {
		name: "a duration under canaryAnalysis",
		mutate: func(t *testing.T, o map[string]any) {
			renameAnalysis(t, o)
			setWebhookField(t, o, "canaryAnalysis", "timeout", "1m 30s")
		},
		want: []string{"spec.canaryAnalysis.webhooks[0].timeout", notDuration},
	}, {
		name: "more than 1000 webhooks",
		mutate: func(t *testing.T, o map[string]any) {
			hooks := make([]any, 1001)
			for i := range hooks {
				hooks[i] = map[string]any{"name": fmt.Sprint("hook-", i), "url": "http://127.0.0.1/"}
			}
			set(t, o, hooks, "spec", "analysis", "webhooks")
		},
		want: []string{"spec.analysis.webhooks", "Too many"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := base.DeepCopy()
			tc.mutate(t, obj.Object)
			err := env.Client.Create(t.Context(), obj, client.DryRunAll, strict)
			if err == nil {
				t.Fatal("accepted, want a validation error")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			t.Logf("refused as expected: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The messages of the admission rules on weights and durations.
const (
	neverAdvances = "the analysis never advances"
	notDuration   = "must be a Go duration"
)

// setWebhookField sets a field of the first webhook of spec.<analysis>.
func setWebhookField(t *testing.T, o map[string]any, analysis, field string, value any) {
	t.Helper()
	hooks, ok, err := unstructured.NestedSlice(o, "spec", analysis, "webhooks")
	if !ok || err != nil || len(hooks) == 0 {
		t.Fatalf("no spec.%s.webhooks: %v", analysis, err)
	}
	hooks[0].(map[string]any)[field] = value
	set(t, o, hooks, "spec", analysis, "webhooks")
}

// TestCanarySchemaAccepts checks that the admission rules on weights and durations refuse only
// what cannot work: what Flagger defaults, caps or runs otherwise is admitted.
func TestCanarySchemaAccepts(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	base := parseObject(t, validCanary)
	base.SetNamespace(ns)

	cases := []struct {
		name   string
		mutate func(t *testing.T, o map[string]any)
	}{{
		name: "stepWeight 0 with the kubernetes provider, which runs blue/green",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, int64(0), "spec", "analysis", "stepWeight")
		},
	}, {
		name: "stepWeight 0 without a provider: -mesh-provider decides",
		mutate: func(t *testing.T, o map[string]any) {
			unstructured.RemoveNestedField(o, "spec", "provider")
			set(t, o, int64(0), "spec", "analysis", "stepWeight")
		},
	}, {
		name: "stepWeight 0 with skipAnalysis",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "istio", "spec", "provider")
			set(t, o, true, "spec", "skipAnalysis")
			set(t, o, int64(0), "spec", "analysis", "stepWeight")
		},
	}, {
		name: "iterations 0 with the kubernetes provider",
		mutate: func(t *testing.T, o map[string]any) {
			unstructured.RemoveNestedField(o, "spec", "analysis", "stepWeight")
			set(t, o, int64(0), "spec", "analysis", "iterations")
		},
	}, {
		name: "maxWeight below stepWeight: the first step overshoots, then promotes",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "istio", "spec", "provider")
			set(t, o, int64(5), "spec", "analysis", "maxWeight")
			set(t, o, int64(10), "spec", "analysis", "stepWeight")
		},
	}, {
		name: "maxWeight 0 with stepWeight: the maximum defaults to 100",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "istio", "spec", "provider")
			set(t, o, int64(0), "spec", "analysis", "maxWeight")
		},
	}, {
		name: "stepWeight and maxWeight above 100: capped at 100",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "istio", "spec", "provider")
			set(t, o, int64(150), "spec", "analysis", "maxWeight")
			set(t, o, int64(120), "spec", "analysis", "stepWeight")
		},
	}, {
		name: "a canaryAnalysis beside analysis is not read",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "istio", "spec", "provider")
			a, _, _ := unstructured.NestedMap(o, "spec", "analysis")
			a["stepWeight"] = int64(0)
			set(t, o, a, "spec", "canaryAnalysis")
		},
	}, {
		name: "compound, fractional and millisecond durations",
		mutate: func(t *testing.T, o map[string]any) {
			set(t, o, "1m30s", "spec", "analysis", "interval")
			set(t, o, []any{map[string]any{"name": "request-duration", "interval": "1m0.5s"}}, "spec", "analysis", "metrics")
			setWebhookField(t, o, "analysis", "timeout", "500ms")
		},
	}, {
		name: "durations under canaryAnalysis",
		mutate: func(t *testing.T, o map[string]any) {
			renameAnalysis(t, o)
			set(t, o, "2m0s", "spec", "canaryAnalysis", "interval")
			setWebhookField(t, o, "canaryAnalysis", "timeout", "1m")
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := base.DeepCopy()
			tc.mutate(t, obj.Object)
			if err := env.Client.Create(t.Context(), obj, client.DryRunAll, strict); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestDeprecatedCanaryAnalysis checks that spec.canaryAnalysis, the name Flagger used before
// spec.analysis, is stored and read back as the analysis.
func TestDeprecatedCanaryAnalysis(t *testing.T) {
	env := testenv.Start(t)
	obj := parseObject(t, validCanary)
	obj.SetNamespace(env.NewNamespace(t))
	renameAnalysis(t, obj.Object)
	if err := env.Client.Create(t.Context(), obj, strict); err != nil {
		t.Fatalf("canaryAnalysis refused: %v", err)
	}
	var cd flaggerv1.Canary
	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), &cd); err != nil {
		t.Fatal(err)
	}
	a := cd.GetAnalysis()
	if cd.Spec.Analysis != nil || a == nil {
		t.Fatalf("analysis %v, canaryAnalysis %v: want only canaryAnalysis", cd.Spec.Analysis, cd.Spec.CanaryAnalysis)
	}
	if a.Interval != "1m" || a.Threshold != 5 || a.StepWeight != 10 || a.MaxWeight != 50 || len(a.Webhooks) != 1 {
		t.Errorf("canaryAnalysis read back as %+v", *a)
	}
}

// TestPrinterColumns checks that `kubectl get` shows the columns Flagger 1.44 shows.
func TestPrinterColumns(t *testing.T) {
	env := testenv.Start(t)
	want := map[string][]apiextensionsv1.CustomResourceColumnDefinition{
		"canaries.flagger.app": {
			{Name: "Status", Type: "string", JSONPath: ".status.phase"},
			{Name: "Weight", Type: "string", JSONPath: ".status.canaryWeight"},
			{Name: "Suspended", Type: "boolean", JSONPath: ".spec.suspend", Priority: 1},
			{Name: "FailedChecks", Type: "string", JSONPath: ".status.failedChecks", Priority: 1},
			{Name: "Interval", Type: "string", JSONPath: ".spec.analysis.interval", Priority: 1},
			{Name: "Mirror", Type: "boolean", JSONPath: ".spec.analysis.mirror", Priority: 1},
			{Name: "StepWeight", Type: "string", JSONPath: ".spec.analysis.stepWeight", Priority: 1},
			{Name: "StepWeights", Type: "string", JSONPath: ".spec.analysis.stepWeights", Priority: 1},
			{Name: "MaxWeight", Type: "string", JSONPath: ".spec.analysis.maxWeight", Priority: 1},
			{Name: "LastTransitionTime", Type: "string", JSONPath: ".status.lastTransitionTime"},
		},
		"metrictemplates.flagger.app": {{Name: "Provider", Type: "string", JSONPath: ".spec.provider.type"}},
		"alertproviders.flagger.app":  {{Name: "Type", Type: "string", JSONPath: ".spec.type"}},
	}
	installed := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for name, cols := range want {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(t.Context(), client.ObjectKey{Name: name}, crd); err != nil {
			t.Fatal(err)
		}
		installed[name] = crd
		if got := columns(t, crd); !reflect.DeepEqual(got, cols) {
			t.Errorf("%s printer columns:\n got %+v\nwant %+v", name, got, cols)
		}
	}

	// Compare with Flagger's own CRD file too, names included.
	data := testenv.Fixture(t, filepath.Join(testenv.FixtureCRDDir, "flagger.yaml"))
	for _, doc := range splitYAML(t, data) {
		flagger := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(doc, flagger); err != nil {
			t.Fatal(err)
		}
		crd := installed[flagger.Name]
		if crd == nil {
			t.Errorf("Flagger has CRD %s, Pennant does not", flagger.Name)
			continue
		}
		if got, want := columns(t, crd), columns(t, flagger); !reflect.DeepEqual(got, want) {
			t.Errorf("%s printer columns differ from Flagger's:\n got %+v\nwant %+v", flagger.Name, got, want)
		}
		if crd.Spec.Scope != flagger.Spec.Scope || !namesEqual(crd.Spec.Names, flagger.Spec.Names) {
			t.Errorf("%s names/scope differ from Flagger's: got %s %+v, want %s %+v", flagger.Name,
				crd.Spec.Scope, crd.Spec.Names, flagger.Spec.Scope, flagger.Spec.Names)
		}
	}
}

// columns returns the printer columns of the single v1beta1 version, without descriptions/formats.
func columns(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition) []apiextensionsv1.CustomResourceColumnDefinition {
	t.Helper()
	for _, v := range crd.Spec.Versions {
		if v.Name != flaggerv1.GroupVersion.Version {
			continue
		}
		var cols []apiextensionsv1.CustomResourceColumnDefinition
		for _, c := range v.AdditionalPrinterColumns {
			cols = append(cols, apiextensionsv1.CustomResourceColumnDefinition{
				Name: c.Name, Type: c.Type, JSONPath: c.JSONPath, Priority: c.Priority,
			})
		}
		return cols
	}
	t.Fatalf("%s has no version %s", crd.Name, flaggerv1.GroupVersion.Version)
	return nil
}

func namesEqual(a, b apiextensionsv1.CustomResourceDefinitionNames) bool {
	sorted := func(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }
	return a.Kind == b.Kind && a.ListKind == b.ListKind && a.Plural == b.Plural && a.Singular == b.Singular &&
		slices.Equal(sorted(a.ShortNames), sorted(b.ShortNames)) && slices.Equal(sorted(a.Categories), sorted(b.Categories))
}

// renameAnalysis moves spec.analysis to the deprecated spec.canaryAnalysis.
func renameAnalysis(t *testing.T, o map[string]any) {
	t.Helper()
	a, ok, err := unstructured.NestedMap(o, "spec", "analysis")
	if !ok || err != nil {
		t.Fatalf("no spec.analysis: %v", err)
	}
	unstructured.RemoveNestedField(o, "spec", "analysis")
	set(t, o, a, "spec", "canaryAnalysis")
}

func set(t *testing.T, o map[string]any, value any, fields ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(o, value, fields...); err != nil {
		t.Fatal(err)
	}
}

func parseObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	return obj
}

// readObjects returns the non-empty documents of a multi-document YAML file.
func readObjects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range splitYAML(t, data) {
		objs = append(objs, parseObject(t, string(doc)))
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no objects", file)
	}
	return objs
}

func splitYAML(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		if len(m) > 0 {
			docs = append(docs, doc)
		}
	}
}

// missingFrom lists the leaves of want that got lacks or holds with another value; got may have more
// (defaults set by the server).
func missingFrom(want, got any) []string {
	var diffs []string
	var walk func(path string, w, g any)
	walk = func(path string, w, g any) {
		switch w := w.(type) {
		case map[string]any:
			gm, ok := g.(map[string]any)
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: want an object, got %v", path, g))
				return
			}
			for k, v := range w {
				walk(path+"."+k, v, gm[k])
			}
		case []any:
			gs, ok := g.([]any)
			if !ok || len(gs) != len(w) {
				diffs = append(diffs, fmt.Sprintf("%s: want %v, got %v", path, w, g))
				return
			}
			for i := range w {
				walk(fmt.Sprintf("%s[%d]", path, i), w[i], gs[i])
			}
		default:
			if !reflect.DeepEqual(w, g) {
				diffs = append(diffs, fmt.Sprintf("%s: want %v, got %v", path, w, g))
			}
		}
	}
	walk("spec", normalize(want), normalize(got))
	return diffs
}

// normalize round-trips through JSON so that every number has the same Go type.
func normalize(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return err.Error()
	}
	return out
}
