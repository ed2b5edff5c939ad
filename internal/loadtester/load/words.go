package load

import (
	"fmt"
	"strings"
)

// splitWords splits a command line into words the way a POSIX shell would, and nothing more: single
// quotes, double quotes and backslash escapes are honoured, and no shell is ever run. Anything a shell
// would give a meaning beyond word splitting (pipes, redirections, command lists, subshells, variable
// and command substitution) is an error instead of being passed on literally, because the line would
// do something else under `sh -c` than here. Glob characters (`?`, `*`, `[`) are kept literally: URLs
// carry them unquoted and a shell leaves them alone when no file matches. A `#` starting a word begins
// a comment, as in sh.
func splitWords(line string) ([]string, error) {
	var (
		words   []string
		word    strings.Builder
		inWord  bool // a word has started (an empty quoted word counts)
		runes   = []rune(line)
		flush   = func() { words = append(words, word.String()); word.Reset(); inWord = false }
		errorAt = func(i int, format string, args ...any) error {
			return fmt.Errorf("column %d: %s", i+1, fmt.Sprintf(format, args...))
		}
	)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				flush()
			}
		case r == '#' && !inWord:
			return words, nil // a comment runs to the end of the line
		case r == '\\':
			if i+1 == len(runes) {
				return nil, errorAt(i, "the line ends with a lone backslash")
			}
			i++
			if runes[i] != '\n' { // backslash-newline continues the line
				word.WriteRune(runes[i])
				inWord = true
			}
		case r == '\'':
			end := indexRune(runes, i+1, '\'')
			if end < 0 {
				return nil, errorAt(i, "unterminated single quote")
			}
			word.WriteString(string(runes[i+1 : end]))
			inWord, i = true, end
		case r == '"':
			end, err := readDoubleQuoted(runes, i+1, &word)
			if err != nil {
				return nil, errorAt(i, "%v", err)
			}
			inWord, i = true, end
		case strings.ContainsRune("|&;<>()", r):
			return nil, errorAt(i, "shell operator %q is not supported: the built-in hey engine runs no shell (quote a URL that contains one)", r)
		case r == '$' || r == '`':
			return nil, errorAt(i, "%q (variable or command substitution) is not supported: the built-in hey engine runs no shell; quote it with single quotes to send it literally", r)
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		flush()
	}
	return words, nil
}

// readDoubleQuoted appends the contents of a double-quoted string starting at runes[from] to word and
// returns the index of the closing quote. Inside double quotes a backslash escapes only $ ` " \ and
// newline, as in sh; `$` and backquote would be expanded by a shell, so they are refused.
func readDoubleQuoted(runes []rune, from int, word *strings.Builder) (int, error) {
	for i := from; i < len(runes); i++ {
		switch r := runes[i]; r {
		case '"':
			return i, nil
		case '\\':
			if i+1 < len(runes) && strings.ContainsRune("$`\"\\\n", runes[i+1]) {
				i++
				if runes[i] != '\n' {
					word.WriteRune(runes[i])
				}
				continue
			}
			word.WriteRune(r)
		case '$', '`':
			return 0, fmt.Errorf("%q inside double quotes (substitution) is not supported: the built-in hey engine runs no shell; use single quotes or \\%c", r, r)
		default:
			word.WriteRune(r)
		}
	}
	return 0, fmt.Errorf("unterminated double quote")
}

func indexRune(runes []rune, from int, r rune) int {
	for i := from; i < len(runes); i++ {
		if runes[i] == r {
			return i
		}
	}
	return -1
}
