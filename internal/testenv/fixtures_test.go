package testenv

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCRDFixturesUnmodified keeps test/crds byte-identical to the upstream files its README names.
func TestCRDFixturesUnmodified(t *testing.T) {
	VerifyDigests(t, FixtureCRDDir, ".yaml", ".yml")
}

// TestCRDFixturesDocumented checks that the README names the origin of every recorded fixture.
func TestCRDFixturesDocumented(t *testing.T) {
	readme := string(Fixture(t, filepath.Join(FixtureCRDDir, "README.md")))
	sums, err := ParseDigests(Fixture(t, filepath.Join(FixtureCRDDir, DigestFile)))
	if err != nil {
		t.Fatal(err)
	}
	for name := range sums {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("%s/README.md does not name the origin of %s", FixtureCRDDir, name)
		}
	}
}

func TestParseDigests(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: good + "  a.yaml\n\n" + good + "  b.yaml\n", want: 2},
		{in: good + " a.yaml\n", wantErr: true},                        // one space: not sha256sum's format
		{in: "abc  a.yaml\n", wantErr: true},                           // too short
		{in: good + "  a.yaml\n" + good + "  a.yaml\n", wantErr: true}, // duplicate
		{in: strings.Repeat("zz", 32) + "  a.yaml\n", wantErr: true},   // not hex
	} {
		got, err := ParseDigests([]byte(tc.in))
		if (err != nil) != tc.wantErr || len(got) != tc.want {
			t.Errorf("ParseDigests(%q) = %v, %v; want %d entries, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestWithFixtureCRDsMissingFileFails checks that a missing CRD fixture stops the environment with
// the file's name instead of skipping anything.
func TestWithFixtureCRDsMissingFileFails(t *testing.T) {
	_, err := start(modeAPIServer, []Option{WithFixtureCRDs("no-such-crd.yaml")})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(FixtureCRDDir, "no-such-crd.yaml")) {
		t.Fatalf("start with a missing fixture: err = %v, want one naming %s/no-such-crd.yaml", err, FixtureCRDDir)
	}
}
