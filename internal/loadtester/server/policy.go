package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pennant/pennant/internal/loadtester/shellwords"
)

// ExecPolicy decides which command lines may start a process. The zero value runs nothing.
type ExecPolicy struct {
	// Allow enables running processes at all (-allow-exec).
	Allow bool
	// Prefixes are the allowed command prefixes (-exec-allow), each a list of words: a command
	// is allowed when its first words are those of one prefix ("helm test" allows "helm test
	// podinfo", not "helm uninstall podinfo"; "curl" does not allow "curlx").
	Prefixes [][]string
	// AllowShell lets a bash or cmd task whose line holds shell syntax (pipes, lists, redirections,
	// substitutions, variables) run through bash -c or sh -c, as Flagger runs every one (-allow-shell).
	// The allowlist then only checks the line's first command: what follows a pipe or a ; is not
	// checked, and a substitution can run anything. Only set it when whoever can reach the load
	// tester may run any command in it.
	AllowShell bool
}

// ParsePrefixes reads -exec-allow: comma-separated prefixes of blank-separated words.
func ParsePrefixes(v string) [][]string {
	var out [][]string
	for _, p := range strings.Split(v, ",") {
		if words := strings.Fields(p); len(words) > 0 {
			out = append(out, words)
		}
	}
	return out
}

// refusal is a request the load tester will not carry out, with the status that says why.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return r.msg }

func refuse(status int, format string, args ...any) *refusal {
	return &refusal{status: status, msg: fmt.Sprintf(format, args...)}
}

// argv decides how a task's command line runs: the program and its arguments, never a shell
// unless the line needs one and AllowShell is set. program, when not empty, is prepended to the
// line's words (kubectl and helm tasks carry only the arguments). shell is the shell Flagger runs
// the line with for this task type (bash, sh), empty when the type never goes through a shell.
func (p ExecPolicy) argv(program, line, shell string) ([]string, *refusal) {
	cl, err := shellwords.Split(line)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "cannot read the command %q: %v", line, err)
	}
	words := cl.Words
	if program != "" {
		words = append([]string{program}, words...)
	}
	if len(words) == 0 {
		return nil, refuse(http.StatusBadRequest, "cmd is empty")
	}
	if !p.Allow {
		return nil, refuse(http.StatusForbidden, "running commands is disabled in this load tester: %q was not run; "+
			"only hey load tests and grpc_health_probe checks run without it (start the load tester with -allow-exec and -exec-allow)", strings.TrimSpace(program+" "+line))
	}
	if !p.allowed(words) {
		return nil, refuse(http.StatusForbidden, "command %q is not allowed: it starts with none of the -exec-allow prefixes (%s)", quoteWords(words), p.describe())
	}
	if len(cl.Syntax) == 0 {
		return words, nil
	}
	if shell == "" {
		return nil, refuse(http.StatusBadRequest, "command %q holds shell syntax (%s) but %s tasks run without a shell", quoteWords(words), strings.Join(cl.SyntaxNames(), " "), program)
	}
	if !p.AllowShell {
		return nil, refuse(http.StatusForbidden, "command %q holds shell syntax (%s): it would need %s -c, which this load tester refuses (start it with -allow-shell to allow it)", line, strings.Join(cl.SyntaxNames(), " "), shell)
	}
	return []string{shell, "-c", line}, nil
}

// allowed tells whether the words start with one of the prefixes.
func (p ExecPolicy) allowed(words []string) bool {
	for _, prefix := range p.Prefixes {
		if len(prefix) <= len(words) && slices.Equal(prefix, words[:len(prefix)]) {
			return true
		}
	}
	return false
}

func (p ExecPolicy) describe() string {
	if len(p.Prefixes) == 0 {
		return "none configured"
	}
	parts := make([]string, len(p.Prefixes))
	for i, prefix := range p.Prefixes {
		parts[i] = strings.Join(prefix, " ")
	}
	return strings.Join(parts, ", ")
}

// quoteWords renders words for a message, quoting the ones a reader could misread.
func quoteWords(words []string) string {
	parts := make([]string, len(words))
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, " \t'\"") {
			parts[i] = fmt.Sprintf("%q", w)
		} else {
			parts[i] = w
		}
	}
	return strings.Join(parts, " ")
}
