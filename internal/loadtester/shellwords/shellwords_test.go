package shellwords

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Lines of plain words: no shell syntax, and the words sh would pass to a program.
var plainLines = []struct {
	line  string
	words []string
}{
	{"hey -z 1m -q 10 -c 2 http://podinfo.test/", []string{"hey", "-z", "1m", "-q", "10", "-c", "2", "http://podinfo.test/"}},
	{"  hey\t-c  2 http://a/  ", []string{"hey", "-c", "2", "http://a/"}},
	{`curl -sd 'test' http://podinfo-canary:9898/token`, []string{"curl", "-sd", "test", "http://podinfo-canary:9898/token"}},
	{`hey -H 'X-Canary: insider' -H "Cookie: a=\"b\"" x`, []string{"hey", "-H", "X-Canary: insider", "-H", `Cookie: a="b"`, "x"}},
	{`hey -d '{"name":"podinfo"}'`, []string{"hey", "-d", `{"name":"podinfo"}`}},
	{`hey -d "a\b\$c\\\` + "`" + `"`, []string{"hey", "-d", `a\b$c\` + "`"}},
	{`echo a\ b c''d "" '' 'a'"b"c`, []string{"echo", "a b", "cd", "", "", "abc"}},
	{`echo 'it''s' '$HOME $(x) ; | > &' "a'b" \'c`, []string{"echo", "its", "$HOME $(x) ; | > &", "a'b", "'c"}},
	{"hey -c 2 \\\n http://a/", []string{"hey", "-c", "2", "http://a/"}},
	{"echo \"a\\\nb\" 'c\\\nd'", []string{"echo", "ab", "c\\\nd"}},
	{`hey http://a/?x=1*[y]`, []string{"hey", "http://a/?x=1*[y]"}},
	{`echo a#b http://a/#frag`, []string{"echo", "a#b", "http://a/#frag"}},
	{`echo 5$ "$" "a$ b" $/ $`, []string{"echo", "5$", "$", "a$ b", "$/", "$"}},
	{"echo \\é é\xff", []string{"echo", "é", "é\xff"}},
	{"echo a\\", []string{"echo", `a\`}},
	{"curl -s http://x\n", []string{"curl", "-s", "http://x"}},
	{"\n\n  hey -c 2 http://a/\n\n", []string{"hey", "-c", "2", "http://a/"}},
	{"", nil},
}

func TestSplitPlainWords(t *testing.T) {
	for _, c := range plainLines {
		got, err := Split(c.line)
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got.Words, c.words) || got.Syntax != nil {
			t.Errorf("%q: words %q syntax %+v, want %q and none", c.line, got.Words, got.Syntax, c.words)
		}
	}
}

// The plain lines split as /bin/sh splits them (run in an empty directory, so that no glob matches).
func TestSplitAgreesWithSh(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	for _, c := range plainLines {
		if strings.HasSuffix(c.line, `\`) || strings.HasPrefix(c.line, "\n") {
			continue // it would continue onto the script's next line, or leave set -- alone on its own
		}
		script := "set -- " + c.line + "\nfor w in \"$@\"; do printf '%s\\0' \"$w\"; done"
		cmd := exec.Command(sh, "-c", script)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("sh on %q: %v", c.line, err)
			continue
		}
		var shWords []string
		if len(out) > 0 {
			shWords = strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		}
		if c.line != "" && !reflect.DeepEqual(shWords, c.words) {
			t.Errorf("sh splits %q into %q, the table says %q", c.line, shWords, c.words)
		}
	}
}

func TestSplitNotesShellSyntax(t *testing.T) {
	for _, c := range []struct {
		line   string
		words  []string
		syntax []string
	}{
		{"curl -s http://x | grep token", []string{"curl", "-s", "http://x", "|", "grep", "token"}, []string{"|"}},
		{"a && b || c; d & e", []string{"a", "&&", "b", "||", "c", ";", "d", "&", "e"}, []string{"&&", "||", ";", "&"}},
		{"echo $(id) `id` ${HOME} $HOME $1 $? $'x'", []string{"echo", "$(", "id", ")", "`", "id", "`", "${", "HOME}", "$", "HOME", "$", "1", "$", "?", "$", "x"},
			[]string{"$(", ")", "`", "${", "$"}},
		{`echo "$(id)" "a $HOME"`, []string{"echo", "$(id)", "a $HOME"}, []string{"$(", "$"}},
		{"echo x > f 2>&1 < g", []string{"echo", "x", ">", "f", "2", ">&", "1", "<", "g"}, []string{">", ">&", "<"}},
		{"echo a # comment; with | operators", []string{"echo", "a", "#"}, []string{"#"}},
		{"echo a;# comment", []string{"echo", "a", ";", "#"}, []string{";", "#"}},
		{"echo a\nrm x", []string{"echo", "a", "\n", "rm", "x"}, []string{"newline"}},
		{"echo a\n\n\nrm x\n", []string{"echo", "a", "\n", "rm", "x"}, []string{"newline"}},
		{"echo a # comment\nrm x", []string{"echo", "a", "#", "\n", "rm", "x"}, []string{"#", "newline"}},
		{"echo a\n# a note\n", []string{"echo", "a", "#"}, []string{"#"}},
		{"echo a\n|b", []string{"echo", "a", "\n", "|", "b"}, []string{"newline", "|"}},
		{"(echo)", []string{"(", "echo", ")"}, []string{"(", ")"}},
	} {
		got, err := Split(c.line)
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got.Words, c.words) || !reflect.DeepEqual(got.SyntaxNames(), c.syntax) {
			t.Errorf("%q: words %q syntax %q, want %q %q", c.line, got.Words, got.SyntaxNames(), c.words, c.syntax)
		}
	}
}

func TestSplitPositions(t *testing.T) {
	got, err := Split("é a|b \"$x\" \\")
	if err != nil {
		t.Fatal(err)
	}
	want := Line{
		Words: []string{"é", "a", "|", "b", "$x", `\`},
		Syntax: []Construct{
			{Text: "|", Column: 4, Word: 2},
			{Text: "$", Column: 8, Word: -1, InDoubleQuotes: true},
		},
		TrailingBackslash: 12,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestSplitRefusesAnOpenQuote(t *testing.T) {
	for line, want := range map[string]string{
		`echo 'x`:    "column 6: unterminated single quote",
		`é "x`:       "column 3: unterminated double quote",
		`echo "x\"`:  "column 6: unterminated double quote",
		`echo "'x'`:  "column 6: unterminated double quote",
		`echo '"x"`:  "column 6: unterminated single quote",
		"echo 'a\nb": "column 6: unterminated single quote",
	} {
		if _, err := Split(line); err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %q", line, err, want)
		}
	}
}

// Whatever the line, Split does not panic; its constructs are where it says, and words without
// shell syntax, quoted again, split back into themselves.
func FuzzSplit(f *testing.F) {
	for _, c := range plainLines {
		f.Add(c.line)
	}
	f.Add("echo $(id) \"`x`\" a;b # c\nd && e 2>&1")
	f.Fuzz(func(t *testing.T, line string) {
		got, err := Split(line)
		if err != nil {
			return
		}
		runes := []rune(line)
		for _, c := range got.Syntax {
			if c.Column < 1 || c.Column > len(runes) || !strings.HasPrefix(string(runes[c.Column-1:]), c.Text) {
				t.Fatalf("%q: construct %+v is not at its column", line, c)
			}
			if c.Word >= 0 && (c.Word >= len(got.Words) || got.Words[c.Word] != c.Text) {
				t.Fatalf("%q: construct %+v is not its word in %q", line, c, got.Words)
			}
		}
		if len(got.Syntax) > 0 || !utf8.ValidString(line) {
			return
		}
		quoted := make([]string, len(got.Words))
		for i, w := range got.Words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := Split(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again.Words, got.Words) {
			t.Fatalf("%q: words %q quoted again split into %q (%v)", line, got.Words, again.Words, err)
		}
	})
}
