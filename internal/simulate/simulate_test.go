package simulate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const examples = "../../examples/simulate"

// Every shipped canary against every shipped scenario: the timeline as printed (golden files in
// testdata/; UPDATE_GOLDEN=1 rewrites them), and the outcome each pair must have.
func TestShippedScenarios(t *testing.T) {
	want := map[string]string{
		"podinfo/healthy": "Succeeded", "podinfo/errors": "Failed", "podinfo/outage": "Failed",
		"podinfo/slow": "Failed", "podinfo/failing-acceptance": "Failed",
		"podinfo-judged/healthy": "Succeeded", "podinfo-judged/errors": "Failed", "podinfo-judged/outage": "Succeeded",
		"podinfo-judged/slow": "Failed", "podinfo-judged/failing-acceptance": "Failed",
	}
	for pair, outcome := range want {
		canaryName, scenarioName, _ := strings.Cut(pair, "/")
		t.Run(pair, func(t *testing.T) {
			cd := readCanary(t, filepath.Join(examples, canaryName+".yaml"))
			data, err := os.ReadFile(filepath.Join(examples, scenarioName+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			sc, err := ParseScenario(data)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := Run(context.Background(), cd, sc, Options{}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != outcome {
				t.Errorf("outcome %s, want %s:\n%s", res.Outcome, outcome, out.String())
			}
			golden(t, canaryName+"-"+scenarioName+".golden", out.String())
		})
	}
}

// The judge rolls a bad canary back sooner than the thresholds; through a shared outage the
// thresholds roll a good canary back and the judge holds it.
func TestJudgeAgainstThresholdsInTheShippedScenarios(t *testing.T) {
	took := func(canaryName, scenarioName string) Result {
		cd := readCanary(t, filepath.Join(examples, canaryName+".yaml"))
		data, _ := os.ReadFile(filepath.Join(examples, scenarioName+".yaml"))
		sc, err := ParseScenario(data)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), cd, sc, Options{}, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if f, j := took("podinfo", "errors"), took("podinfo-judged", "errors"); j.Took >= f.Took {
		t.Errorf("errors: the judge rolled back after %s, the thresholds after %s", j.Took, f.Took)
	}
}

func TestScenariosThatCannotWork(t *testing.T) {
	for want, text := range map[string]string{
		"rps: must be positive":                             `primary: {errorRate: 1}`,
		"canary.errorRate: 120 is not a percentage":         "rps: 10\ncanary: {errorRate: 120}",
		"outages[0]: to (1m0s) must come after from (2m0s)": "rps: 10\noutages: [{from: 2m, to: 1m, errorRate: 5}]",
		`webhooks.load-test: "maybe", want pass or fail`:    "rps: 10\nwebhooks: {load-test: maybe}",
		`"2 minutes" is not a duration`:                     "rps: 10\nduration: 2 minutes",
		`unknown field "rate"`:                              "rps: 10\nrate: 5",
	} {
		if _, err := ParseScenario([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
	cd := readCanary(t, filepath.Join(examples, "podinfo.yaml"))
	cd.Spec.Analysis.Metrics[0].TemplateRef = &flaggerv1.CrossNamespaceRef{Name: "error-rate"}
	if _, err := Run(context.Background(), cd, Scenario{RPS: 1}, Options{}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "builtin metrics") {
		t.Errorf("a template metric: %v", err)
	}
	cd = readCanary(t, filepath.Join(examples, "podinfo.yaml"))
	cd.Spec.Analysis.StepWeights = []int{20, 10}
	if _, err := Run(context.Background(), cd, Scenario{RPS: 1}, Options{}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "stepWeights must be positive and increasing") {
		t.Errorf("an invalid canary: %v", err)
	}
}

func readCanary(t *testing.T, path string) *flaggerv1.Canary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cd := &flaggerv1.Canary{}
	if err := yaml.UnmarshalStrict(data, cd); err != nil {
		t.Fatal(err)
	}
	return cd
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (UPDATE_GOLDEN=1 rewrites it):\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}
