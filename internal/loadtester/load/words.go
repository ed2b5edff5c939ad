package load

import (
	"fmt"

	"github.com/pennant/pennant/internal/loadtester/shellwords"
)

// heyWords splits a hey command line into words the way sh would (shellwords.Split) and refuses
// anything sh would give a meaning beyond word splitting (pipes, redirections, command lists and line
// breaks between commands, subshells, variable and command substitution): the line would do something
// else under `sh -c` than here, where no shell runs. A comment is dropped, as sh drops it, and so is a
// line break that ends the line (YAML's `cmd: |` leaves one). Glob characters (`?`, `*`, `[`) are kept
// literally: URLs carry them unquoted and a shell leaves them alone when no file matches.
func heyWords(command string) ([]string, error) {
	line, err := shellwords.Split(command)
	if err != nil {
		return nil, err
	}
	if line.TrailingBackslash > 0 {
		return nil, fmt.Errorf("column %d: the line ends with a lone backslash", line.TrailingBackslash)
	}
	words := line.Words
	comment := false
	for _, c := range line.Syntax {
		switch {
		case c.Text == "#":
			if !comment { // the comment runs to the end of its line: what follows is refused below if anything is
				words, comment = line.Words[:c.Word], true
			}
		default:
			return nil, fmt.Errorf("column %d: %s", c.Column, refusal(c))
		}
	}
	return words, nil
}

// refusal says why the hey engine cannot take a shell construct.
func refusal(c shellwords.Construct) string {
	first := rune(c.Text[0])
	switch {
	case c.Text == "\n":
		return "a line break separates commands in sh: the built-in hey engine runs one hey command (end a line with \\ to continue it)"
	case c.InDoubleQuotes:
		return fmt.Sprintf("%q inside double quotes (substitution) is not supported: the built-in hey engine runs no shell; use single quotes or \\%c", first, first)
	case first == '$' || first == '`':
		return fmt.Sprintf("%q (variable or command substitution) is not supported: the built-in hey engine runs no shell; quote it with single quotes to send it literally", first)
	default:
		return fmt.Sprintf("shell operator %q is not supported: the built-in hey engine runs no shell (quote a URL that contains one)", first)
	}
}
