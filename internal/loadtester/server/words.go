package server

import (
	"errors"
	"fmt"
	"strings"
)

// commandLine is a command line split into words the way a POSIX shell splits plain words: blanks
// separate words, single quotes keep everything literally, double quotes keep everything but a
// backslash before " \ $ or `, and a backslash outside quotes keeps the next character. Nothing is
// expanded. Whatever a shell would treat as more than plain words is recorded in shellSyntax, and
// an operator becomes a word of its own, so that it can never be mistaken for part of an allowed
// command.
type commandLine struct {
	words []string
	// shellSyntax lists the shell constructs found outside single quotes: pipes, lists,
	// redirections, substitutions, variables, subshells, comments; empty for plain words.
	shellSyntax []string
}

// errUnterminated is a quote left open.
var errUnterminated = errors.New("unterminated quote")

// splitCommandLine splits line into words and notes its shell syntax.
func splitCommandLine(line string) (commandLine, error) {
	var (
		out     commandLine
		word    strings.Builder
		inWord  bool
		pending = func() {
			if inWord {
				out.words = append(out.words, word.String())
				word.Reset()
				inWord = false
			}
		}
		syntax = func(s string) {
			if !containsString(out.shellSyntax, s) {
				out.shellSyntax = append(out.shellSyntax, s)
			}
		}
	)
	r := []rune(line)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == ' ' || c == '\t':
			pending()
		case c == '\'':
			end := indexRune(r, i+1, '\'')
			if end < 0 {
				return out, errUnterminated
			}
			word.WriteString(string(r[i+1 : end]))
			inWord = true
			i = end
		case c == '"':
			end, err := readDoubleQuoted(r, i+1, &word, syntax)
			if err != nil {
				return out, err
			}
			inWord = true
			i = end
		case c == '\\':
			if i+1 < len(r) {
				i++
				if r[i] == '\n' {
					continue // a line continuation
				}
				word.WriteRune(r[i])
			} else {
				word.WriteRune(c)
			}
			inWord = true
		case c == '#' && !inWord:
			syntax("#")
			pending()
			out.words = append(out.words, "#")
			i = len(r)
		case strings.ContainsRune("|&;<>()\n`$", c):
			op := operator(r, i)
			syntax(strings.ReplaceAll(op, "\n", "newline"))
			pending()
			out.words = append(out.words, op)
			i += len([]rune(op)) - 1
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	pending()
	return out, nil
}

// readDoubleQuoted reads a double-quoted string starting after its opening quote into word and
// returns the index of the closing quote. $ and ` keep their meaning inside double quotes.
func readDoubleQuoted(r []rune, from int, word *strings.Builder, syntax func(string)) (int, error) {
	for i := from; i < len(r); i++ {
		switch c := r[i]; {
		case c == '"':
			return i, nil
		case c == '\\' && i+1 < len(r) && strings.ContainsRune("\"\\$`\n", r[i+1]):
			i++
			if r[i] != '\n' {
				word.WriteRune(r[i])
			}
		case c == '$' || c == '`':
			syntax(operator(r, i))
			word.WriteRune(c)
		default:
			word.WriteRune(c)
		}
	}
	return 0, errUnterminated
}

// operator is the shell operator starting at r[i]: two-character forms (||, &&, >>, $(, ...) or one
// character.
func operator(r []rune, i int) string {
	if i+1 < len(r) {
		two := string(r[i : i+2])
		switch two {
		case "||", "&&", ">>", "<<", "$(", "${", ";;", ">&", "<&", "&>":
			return two
		}
	}
	return string(r[i])
}

func indexRune(r []rune, from int, c rune) int {
	for i := from; i < len(r); i++ {
		if r[i] == c {
			return i
		}
	}
	return -1
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
