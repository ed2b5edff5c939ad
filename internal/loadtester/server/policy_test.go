package server

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestExecPolicy(t *testing.T) {
	p := ExecPolicy{Allow: true, Prefixes: ParsePrefixes(" curl , helm test,kubectl get,, bats")}
	for _, c := range []struct {
		program, line, shell string
		argv                 []string
		status               int
	}{
		{"", "curl -sf http://x", "bash", []string{"curl", "-sf", "http://x"}, 0},
		{"", "curlx http://x", "bash", nil, 403},
		{"", "/usr/bin/curl http://x", "bash", nil, 403},
		{"helm", "test podinfo", "", []string{"helm", "test", "podinfo"}, 0},
		{"helm", "uninstall podinfo", "", nil, 403},
		{"helm", "testx podinfo", "", nil, 403},
		{"kubectl", "get pods -o 'jsonpath={.items[*].metadata.name}'", "", []string{"kubectl", "get", "pods", "-o", "jsonpath={.items[*].metadata.name}"}, 0},
		{"", "bats /tests", "bash", []string{"bats", "/tests"}, 0},
		{"", "curl -s http://x | grep token", "bash", nil, 403},
		// A YAML block scalar (cmd: |) ends the line with a line break: it separates nothing.
		{"", "curl -sf http://x\n", "bash", []string{"curl", "-sf", "http://x"}, 0},
		{"", "curl -sf http://x\nkubectl delete ns prod\n", "bash", nil, 403},
		// A $ that sh keeps literally is no shell syntax.
		{"", "curl -sf http://x/?price=5$", "bash", []string{"curl", "-sf", "http://x/?price=5$"}, 0},
		{"", "curl -sf http://x/?price=$PRICE", "bash", nil, 403},
		{"", "   ", "bash", nil, 400},
	} {
		argv, rf := p.argv(c.program, c.line, c.shell)
		status := 0
		if rf != nil {
			status = rf.status
		}
		if status != c.status || !reflect.DeepEqual(argv, c.argv) {
			t.Errorf("%s %q: argv %q refusal %v, want %q %d", c.program, c.line, argv, rf, c.argv, c.status)
		}
	}
	shell := p
	shell.AllowShell = true
	if argv, rf := shell.argv("", "curl -s http://x | grep token", "bash"); rf != nil || !reflect.DeepEqual(argv, []string{"bash", "-c", "curl -s http://x | grep token"}) {
		t.Errorf("with -allow-shell: %q %v", argv, rf)
	}
	if _, rf := shell.argv("", "grep token | curl x", "bash"); rf == nil {
		t.Error("with -allow-shell, the first command must still be allowed")
	}
	if _, rf := (ExecPolicy{}).argv("", "curl x", "bash"); rf == nil || rf.status != 403 {
		t.Errorf("the zero policy ran a command: %v", rf)
	}
}

func TestCappedOutputKeepsBeginningAndEnd(t *testing.T) {
	c := newCappedOutput(10)
	var all bytes.Buffer
	for i := range 30 {
		chunk := []byte(fmt.Sprintf("%d,", i))
		all.Write(chunk)
		_, _ = c.Write(chunk)
	}
	got := string(c.Bytes())
	head, tail := all.String()[:5], all.String()[all.Len()-5:]
	dropped := all.Len() - 10
	want := head + fmt.Sprintf("\n[... %d bytes of output dropped (-max-output-bytes) ...]\n", dropped) + tail
	if got != want || !c.Truncated() {
		t.Errorf("got %q, want %q", got, want)
	}
	big := newCappedOutput(8)
	_, _ = big.Write([]byte(strings.Repeat("a", 4) + strings.Repeat("b", 100) + "wxyz"))
	if got := string(big.Bytes()); !strings.HasPrefix(got, "aaaa") || !strings.HasSuffix(got, "wxyz") || !strings.Contains(got, "100 bytes") {
		t.Errorf("one big write: %q", got)
	}
	small := newCappedOutput(100)
	_, _ = small.Write([]byte("hello"))
	if string(small.Bytes()) != "hello" || small.Truncated() {
		t.Errorf("short output: %q", small.Bytes())
	}
}
