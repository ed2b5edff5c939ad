package cli

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// lintExamples are Canary manifests that must be valid: Flagger's examples (copied unmodified into
// api/v1beta1/testdata/examples, origin in its README) and the repository's own.
func lintExamples(t *testing.T) []string {
	var files []string
	for _, glob := range []string{
		"../../api/v1beta1/testdata/examples/*.yaml",
		"../../examples/demo/*/canary*.yaml",
		"../../examples/gitops/apps/*/canary.yaml",
	} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 8 {
		t.Fatalf("only %d example files found: %v", len(files), files)
	}
	return files
}

func TestLintAcceptsFlaggersAndPennantsExamples(t *testing.T) {
	l, err := NewLinter("")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := l.LintFiles(context.Background(), lintExamples(t), nil, &out); err != nil {
		t.Fatalf("lint of the examples: %v\n%s", err, out.String())
	}
	if !strings.HasSuffix(out.String(), " canaries valid\n") || strings.HasPrefix(out.String(), "0 ") {
		t.Errorf("output %q", out.String())
	}
}

// Each error of the broken manifests is reported with its field path; the output is golden.
func TestLintNamesEachErrorWithItsFieldPath(t *testing.T) {
	l, err := NewLinter("")
	if err != nil {
		t.Fatal(err)
	}
	file := "testdata/lint/broken.yaml"
	var out bytes.Buffer
	err = l.LintFiles(context.Background(), []string{file}, nil, &out)
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Fatalf("lint of broken manifests: %v, want exit code 1", err)
	}
	golden(t, "lint/broken.golden", out.String())

	data := readFile(t, file)
	n, problems := l.Lint(context.Background(), file, data)
	if n != 3 {
		t.Errorf("%d canaries checked, want 3 (the Service is skipped)", n)
	}
	for _, want := range []string{
		"spec.service.gatways", "spec.service.port", "spec.targetRef.name", "spec.analysis.interval",
		"spec.analysis.metrics[0].interval", "spec.analysis", "spec.analysis.webhooks[0].type", "spec.analysis.stepWeights",
	} {
		found := false
		for _, p := range problems {
			found = found || p.Field == want
		}
		if !found {
			t.Errorf("no error on %s among:\n%s", want, out.String())
		}
	}
	for _, p := range problems {
		if p.Field == "" || p.Object == "" {
			t.Errorf("problem without a field path or object: %+v", p)
		}
	}
}

// lint reads standard input for "-" and uses --mesh-provider for canaries without spec.provider.
func TestLintStdinAndMeshProvider(t *testing.T) {
	manifest := []byte(`apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 5, stepWeight: 0, maxWeight: 50}
`)
	for provider, wantErr := range map[string]bool{"kubernetes": false, "istio": true} {
		l, err := NewLinter(provider)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = l.LintFiles(context.Background(), []string{"-"}, bytes.NewReader(manifest), &out)
		if (err != nil) != wantErr {
			t.Errorf("mesh provider %s: %v, want error %v\n%s", provider, err, wantErr, out.String())
		}
	}
}
