package server

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommandLine(t *testing.T) {
	for _, c := range []struct {
		line   string
		words  []string
		syntax []string
	}{
		{"hey -z 1m -q 10 -c 2 http://podinfo.test/", []string{"hey", "-z", "1m", "-q", "10", "-c", "2", "http://podinfo.test/"}, nil},
		{`curl -sd 'test' http://podinfo-canary:9898/token`, []string{"curl", "-sd", "test", "http://podinfo-canary:9898/token"}, nil},
		{`hey -H 'X-Canary: insider' -H "Cookie: a=\"b\"" x`, []string{"hey", "-H", "X-Canary: insider", "-H", `Cookie: a="b"`, "x"}, nil},
		{`echo a\ b c''d "" ''`, []string{"echo", "a b", "cd", "", ""}, nil},
		{`echo 'it''s' '$HOME' "a'b"`, []string{"echo", "its", "$HOME", "a'b"}, nil},
		{"curl -s http://x | grep token", []string{"curl", "-s", "http://x", "|", "grep", "token"}, []string{"|"}},
		{"a && b || c; d & e", []string{"a", "&&", "b", "||", "c", ";", "d", "&", "e"}, []string{"&&", "||", ";", "&"}},
		{"echo $(id) `id` ${HOME} $HOME", []string{"echo", "$(", "id", ")", "`", "id", "`", "${", "HOME}", "$", "HOME"}, []string{"$(", ")", "`", "${", "$"}},
		{`echo "$(id)"`, []string{"echo", "$(id)"}, []string{"$("}},
		{"echo x > f 2>&1 < g", []string{"echo", "x", ">", "f", "2", ">&", "1", "<", "g"}, []string{">", ">&", "<"}},
		{"echo a # comment", []string{"echo", "a", "#"}, []string{"#"}},
		{"echo a#b", []string{"echo", "a#b"}, nil},
		{"echo a\nrm x", []string{"echo", "a", "\n", "rm", "x"}, []string{"newline"}},
		{"(echo)", []string{"(", "echo", ")"}, []string{"(", ")"}},
	} {
		got, err := splitCommandLine(c.line)
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got.words, c.words) || !reflect.DeepEqual(got.shellSyntax, c.syntax) {
			t.Errorf("%q: words %q syntax %q, want %q %q", c.line, got.words, got.shellSyntax, c.words, c.syntax)
		}
	}
	for _, line := range []string{`echo 'x`, `echo "x`, `echo "x\"`} {
		if _, err := splitCommandLine(line); err == nil {
			t.Errorf("%q: no error for an open quote", line)
		}
	}
}

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
