package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// refCanary is a canary in namespace "team-a" whose references are all in the given namespace.
func refCanary(refNamespace string) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "team-a"},
		Spec: flaggerv1.CanarySpec{
			UpstreamRef: &flaggerv1.CrossNamespaceObjectReference{Kind: "Upstream", Name: "up", Namespace: refNamespace},
			Analysis: &flaggerv1.CanaryAnalysis{
				Metrics: []flaggerv1.CanaryMetric{{Name: "errors", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "t", Namespace: refNamespace}}},
				Alerts:  []flaggerv1.CanaryAlert{{Name: "slack", ProviderRef: flaggerv1.CrossNamespaceRef{Name: "p", Namespace: refNamespace}}},
			},
		},
	}
}

func TestValidateCrossNamespaceRefs(t *testing.T) {
	for _, ns := range []string{"", "team-a"} {
		if err := validate(refCanary(ns), "kubernetes", true); err != nil {
			t.Errorf("references in namespace %q refused with -no-cross-namespace-refs: %v", ns, err)
		}
	}
	if err := validate(refCanary("team-b"), "kubernetes", false); err != nil {
		t.Errorf("cross-namespace references refused without the flag: %v", err)
	}
	cases := map[string]func(cd *flaggerv1.Canary){
		"spec.upstreamRef":                func(cd *flaggerv1.Canary) { cd.Spec.UpstreamRef.Namespace = "team-b" },
		"analysis.metrics[0].templateRef": func(cd *flaggerv1.Canary) { cd.Spec.Analysis.Metrics[0].TemplateRef.Namespace = "team-b" },
		"analysis.alerts[0].providerRef":  func(cd *flaggerv1.Canary) { cd.Spec.Analysis.Alerts[0].ProviderRef.Namespace = "team-b" },
	}
	for field, foreign := range cases {
		cd := refCanary("")
		foreign(cd)
		err := validate(cd, cd.Spec.Provider, true)
		if err == nil || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "team-b") {
			t.Errorf("%s in another namespace: got %v, want an error naming the field and namespace", field, err)
		}
	}
}

func TestValidateStepWeights(t *testing.T) {
	for _, sw := range [][]int{{0, 10}, {-5}, {10, 10}, {20, 10}} {
		cd := refCanary("")
		cd.Spec.Analysis.StepWeights = sw
		if err := validate(cd, cd.Spec.Provider, false); err == nil {
			t.Errorf("stepWeights %v accepted", sw)
		}
	}
	cd := refCanary("")
	cd.Spec.Analysis.StepWeights = []int{1, 20, 100}
	if err := validate(cd, cd.Spec.Provider, false); err != nil {
		t.Errorf("stepWeights [1 20 100] refused: %v", err)
	}
}

func TestValidateRefusesNegativeNumbers(t *testing.T) {
	cases := map[string]func(a *flaggerv1.CanaryAnalysis){
		"stepWeight":          func(a *flaggerv1.CanaryAnalysis) { a.StepWeight = -5 },
		"maxWeight":           func(a *flaggerv1.CanaryAnalysis) { a.MaxWeight = -1 },
		"stepWeightPromotion": func(a *flaggerv1.CanaryAnalysis) { a.StepWeightPromotion = -10 },
		"iterations":          func(a *flaggerv1.CanaryAnalysis) { a.Iterations = -1 },
		"threshold":           func(a *flaggerv1.CanaryAnalysis) { a.Threshold = -2 },
		"mirrorWeight":        func(a *flaggerv1.CanaryAnalysis) { a.MirrorWeight = 101 },
	}
	for field, bad := range cases {
		cd := refCanary("")
		bad(cd.Spec.Analysis)
		if err := validate(cd, cd.Spec.Provider, false); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
}

func TestValidateRefusesAnAnalysisThatNeverAdvances(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(cd *flaggerv1.Canary)
		refused bool
	}{
		{"istio without weights or iterations", func(cd *flaggerv1.Canary) { cd.Spec.Provider = "istio" }, true},
		{"linkerd with an empty stepWeights", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "linkerd"
			cd.Spec.Analysis.StepWeights = []int{}
		}, true},
		{"under canaryAnalysis", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "gloo"
			cd.Spec.CanaryAnalysis, cd.Spec.Analysis = cd.Spec.Analysis, nil
		}, true},
		{"maxWeight alone does not advance", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "istio"
			cd.Spec.Analysis.MaxWeight = 50
		}, true},
		{"the kubernetes provider runs blue/green", func(cd *flaggerv1.Canary) { cd.Spec.Provider = "kubernetes" }, false},
		{"no provider: -mesh-provider decides", func(cd *flaggerv1.Canary) { cd.Spec.Provider = "" }, false},
		{"skipAnalysis", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "istio"
			cd.Spec.SkipAnalysis = true
		}, false},
		{"a positive stepWeight", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "istio"
			cd.Spec.Analysis.StepWeight = 1
		}, false},
		{"stepWeight above maxWeight", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "istio"
			cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = 30, 10
		}, false},
		{"iterations", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "istio"
			cd.Spec.Analysis.Iterations = 1
		}, false},
		{"stepWeights", func(cd *flaggerv1.Canary) {
			cd.Spec.Provider = "istio"
			cd.Spec.Analysis.StepWeights = []int{10}
		}, false},
	}
	for _, tc := range cases {
		cd := refCanary("")
		tc.mutate(cd)
		err := validate(cd, cd.Spec.Provider, false)
		switch {
		case tc.refused && (err == nil || !strings.Contains(err.Error(), "never advances")):
			t.Errorf("%s: got %v, want an error saying the analysis never advances", tc.name, err)
		case !tc.refused && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		}
	}
}

func TestValidateDurations(t *testing.T) {
	good := []string{"", "0s", "10s", "1m", "1m30s", "500ms", "1m0.5s", "2h45m", "1.5h"}
	bad := []string{"1m30", "1mins", "5sec", "1m 30s", "5", "1d", "m", "9999999999999999999s"}
	fields := map[string]func(a *flaggerv1.CanaryAnalysis, s string){
		"analysis.interval":            func(a *flaggerv1.CanaryAnalysis, s string) { a.Interval = s },
		"analysis.metrics[0].interval": func(a *flaggerv1.CanaryAnalysis, s string) { a.Metrics[0].Interval = s },
		"analysis.webhooks[1].timeout": func(a *flaggerv1.CanaryAnalysis, s string) {
			a.Webhooks = []flaggerv1.CanaryWebhook{{Name: "ok", Timeout: "15s"}, {Name: "x", Timeout: s}}
		},
	}
	for field, set := range fields {
		for _, s := range good {
			cd := refCanary("")
			set(cd.Spec.Analysis, s)
			if err := validate(cd, cd.Spec.Provider, false); err != nil {
				t.Errorf("%s %q refused: %v", field, s, err)
			}
		}
		for _, s := range bad {
			cd := refCanary("")
			set(cd.Spec.Analysis, s)
			if err := validate(cd, cd.Spec.Provider, false); err == nil || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "not a Go duration") {
				t.Errorf("%s %q: got %v, want an error naming the field", field, s, err)
			}
		}
		cd := refCanary("")
		set(cd.Spec.Analysis, "-1m")
		if err := validate(cd, cd.Spec.Provider, false); err == nil || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%s -1m: got %v, want an error naming the field", field, err)
		}
	}
}

// Without spec.provider, the -mesh-provider flag decides whether an analysis without weights can
// work: only the controller knows it, so only validate refuses such a canary.
func TestValidateNeverAdvancingUsesTheDefaultProvider(t *testing.T) {
	cd := refCanary("")
	cd.Spec.Provider = ""
	if err := validate(cd, "istio", false); err == nil || !strings.Contains(err.Error(), "never advances") {
		t.Errorf("no provider, -mesh-provider=istio: got %v, want the analysis refused as never advancing", err)
	}
	if err := validate(cd, "kubernetes", false); err != nil {
		t.Errorf("no provider, -mesh-provider=kubernetes: refused: %v", err)
	}
}

func TestValidateRefusesAJudgeThatCannotWork(t *testing.T) {
	judged := func(provider string, m flaggerv1.CanaryMetric) *flaggerv1.Canary {
		cd := refCanary("")
		cd.Spec.Provider = provider
		cd.Spec.Analysis.StepWeight = 10
		cd.Spec.Analysis.Metrics = []flaggerv1.CanaryMetric{m}
		return cd
	}
	rate := func(j flaggerv1.CanaryMetricJudge) flaggerv1.CanaryMetric {
		return flaggerv1.CanaryMetric{Name: "request-success-rate", Judge: &j}
	}
	for want, cd := range map[string]*flaggerv1.Canary{
		"analysis.metrics[0].judge: no tolerance":                                    judged("istio", rate(flaggerv1.CanaryMetricJudge{})),
		"analysis.metrics[0].judge: a judged request-duration needs a maximum":       judged("istio", flaggerv1.CanaryMetric{Name: "request-duration", Judge: &flaggerv1.CanaryMetricJudge{Tolerance: 1}}),
		"analysis.metrics[0].judge: only request-success-rate and request-duration":  judged("istio", flaggerv1.CanaryMetric{Name: "error-rate", Query: "up", Judge: &flaggerv1.CanaryMetricJudge{Tolerance: 1}}),
		"analysis.metrics[0].judge: the nginx provider's request duration is a mean": judged("nginx", flaggerv1.CanaryMetric{Name: "request-duration", Threshold: 500, Judge: &flaggerv1.CanaryMetricJudge{Tolerance: 1}}),
		"analysis.metrics[0].judge: the skipper provider's metrics do not tell":      judged("skipper", rate(flaggerv1.CanaryMetricJudge{Tolerance: 1})),
	} {
		if err := validate(cd, cd.Spec.Provider, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	if err := validate(judged("istio", rate(flaggerv1.CanaryMetricJudge{Tolerance: 1})), "istio", false); err != nil {
		t.Errorf("a judged success rate on Istio refused: %v", err)
	}
}
