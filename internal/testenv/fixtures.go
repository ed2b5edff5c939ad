package testenv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// DigestFile is the name of the file that records the SHA-256 of every fixture in a directory, in
// the format of sha256sum(1), so that `sha256sum -c SHA256SUMS` checks them by hand too.
const DigestFile = "SHA256SUMS"

// Fixture returns the content of a file held in the repository, path relative to its root
// (e.g. "test/crds/flagger.yaml"). A missing file fails t with the file's name: fixtures are part
// of the repository, so a test never skips for want of one.
func Fixture(t testing.TB, path string) []byte {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return data
}

// VerifyDigests checks the fixtures of dir (relative to the repository root) against dir's
// SHA256SUMS: every listed file is present and unmodified, and every file with one of the given
// extensions is listed, so a copy of an upstream file cannot drift or be added without its record.
func VerifyDigests(t testing.TB, dir string, exts ...string) {
	t.Helper()
	want, err := ParseDigests(Fixture(t, filepath.Join(dir, DigestFile)))
	if err != nil {
		t.Fatalf("%s/%s: %v", dir, DigestFile, err)
	}
	if len(want) == 0 {
		t.Fatalf("%s/%s lists no files", dir, DigestFile)
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sum := sha256.Sum256(Fixture(t, filepath.Join(dir, name)))
		if got := hex.EncodeToString(sum[:]); got != want[name] {
			t.Errorf("%s/%s has SHA-256 %s, %s records %s: fixtures are upstream copies, not to be edited",
				dir, name, got, DigestFile, want[name])
		}
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		for _, ext := range exts {
			if _, listed := want[e.Name()]; strings.HasSuffix(e.Name(), ext) && !listed {
				t.Errorf("%s/%s is not recorded in %s (nor, likely, in the directory's README)", dir, e.Name(), DigestFile)
			}
		}
	}
}

// ParseDigests reads sha256sum(1) output: "<64 hex digits>  <name>" per line.
func ParseDigests(data []byte) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 64 || name == "" {
			return nil, fmt.Errorf("line %d: want \"<sha256>  <file>\", got %q", n, line)
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("line %d: %s listed twice", n, name)
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}
