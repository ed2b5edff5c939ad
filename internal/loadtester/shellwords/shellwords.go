// Package shellwords splits a command line into words the way a POSIX shell (sh) does, without
// running a shell or expanding anything, and reports where the line uses shell syntax beyond
// plain words. Its callers decide what to do with that syntax: the hey engine refuses it, the exec
// policy runs such a line through a shell only when allowed to.
package shellwords

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Line is a command line split into words.
type Line struct {
	// Words are the line's words as sh would pass them to a program: blanks (space, tab)
	// separate words, single quotes keep everything literally, double quotes keep everything
	// but a backslash before " \ $ ` or a newline, and a backslash outside quotes keeps the next
	// character (a backslash-newline joins two lines). Each shell construct that stands between
	// words (an operator, the start of a substitution, a comment's #, a command-separating
	// newline) is a word of its own, so that it can never be mistaken for part of a command.
	Words []string
	// Syntax are the shell constructs found outside single quotes, in the order of the line;
	// empty for a line of plain words.
	Syntax []Construct
	// TrailingBackslash is the column of a backslash that ends the line with nothing to escape
	// (sh keeps it literally, as the last character of the last word); 0 when there is none.
	TrailingBackslash int
}

// Construct is one piece of shell syntax in a line.
type Construct struct {
	// Text is the construct as written: an operator ("|", "&&", ";", ">", ">&", "(", ...), the
	// start of an expansion ("$", "$(", "${", "`"), "#" for a comment (whose text is skipped) or
	// "\n" for a line break that separates commands.
	Text string
	// Column is the 1-based column (in characters) of the construct's first character.
	Column int
	// Word is the index in Line.Words of the word the construct is; -1 inside double quotes,
	// where the construct is part of a word.
	Word int
	// InDoubleQuotes is set for a "$" or "`" inside double quotes, where sh still expands it.
	InDoubleQuotes bool
}

// Name is the construct as a message shows it: its text, or "newline" for a line break.
func (c Construct) Name() string {
	if c.Text == "\n" {
		return "newline"
	}
	return c.Text
}

// SyntaxNames are the names of the line's shell constructs, each once, in the order of the line.
func (l Line) SyntaxNames() []string {
	var names []string
	for _, c := range l.Syntax {
		if !slices.Contains(names, c.Name()) {
			names = append(names, c.Name())
		}
	}
	return names
}

// Error is a line that cannot be split: a quote left open.
type Error struct {
	Column int // 1-based, in characters
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// Split splits line into words and notes its shell syntax (see Line). Line breaks before the first
// word, after the last one or before a comment separate nothing and count as blanks: a YAML block
// scalar (`cmd: |`) ends its line with one. Glob characters (* ? [) and ~ are kept literally. The
// line is read as bytes, so that text that is not valid UTF-8 reaches the words unchanged.
func Split(line string) (Line, error) {
	s := splitter{line: line, newline: -1}
	if err := s.run(); err != nil {
		return Line{}, err
	}
	return s.out, nil
}

// splitter is the state of one Split.
type splitter struct {
	line   string
	out    Line
	word   strings.Builder
	inWord bool // a word has started (an empty quoted word counts)
	// newline is the offset of a line break that separates commands once another command
	// follows it; -1: none pending.
	newline int
}

func (s *splitter) run() error {
	for i := 0; i < len(s.line); i++ {
		switch c := s.line[i]; {
		case c == ' ' || c == '\t':
			s.endWord()
		case c == '\n':
			s.endWord()
			if len(s.out.Words) > 0 && s.newline < 0 {
				s.newline = i
			}
		case c == '#' && !s.inWord:
			s.newline = -1 // a comment line after the command separates nothing
			s.addConstruct("#", i)
			i = s.endOfComment(i)
		case c == '\\':
			i = s.backslash(i)
		case c == '\'':
			end := strings.IndexByte(s.line[i+1:], '\'')
			if end < 0 {
				return s.errorAt(i, "unterminated single quote")
			}
			s.startWord()
			s.word.WriteString(s.line[i+1 : i+1+end])
			i += 1 + end
		case c == '"':
			end, err := s.doubleQuoted(i)
			if err != nil {
				return err
			}
			i = end
		case strings.IndexByte("|&;<>()`", c) >= 0 || c == '$' && expands(s.line, i, false):
			op := operator(s.line, i)
			s.addConstruct(op, i)
			i += len(op) - 1
		default:
			s.startWord()
			s.word.WriteByte(c)
		}
	}
	s.endWord()
	return nil
}

// startWord starts or continues a word; a line break waiting before it now separates commands.
func (s *splitter) startWord() {
	if s.inWord {
		return
	}
	s.separate()
	s.inWord = true
}

func (s *splitter) endWord() {
	if s.inWord {
		s.out.Words = append(s.out.Words, s.word.String())
		s.word.Reset()
		s.inWord = false
	}
}

// separate records the pending line break, now that another command follows it.
func (s *splitter) separate() {
	if at := s.newline; at >= 0 {
		s.newline = -1
		s.addConstruct("\n", at)
	}
}

// addConstruct records a construct that stands between words, as a word of its own.
func (s *splitter) addConstruct(text string, at int) {
	s.endWord()
	if text != "\n" && text != "#" {
		s.separate()
	}
	s.out.Syntax = append(s.out.Syntax, Construct{Text: text, Column: s.column(at), Word: len(s.out.Words)})
	s.out.Words = append(s.out.Words, text)
}

// endOfComment is the offset of the last character of the comment starting at from: the one
// before the line break that ends it, or the line's last.
func (s *splitter) endOfComment(from int) int {
	if n := strings.IndexByte(s.line[from:], '\n'); n >= 0 {
		return from + n - 1
	}
	return len(s.line) - 1
}

// backslash reads the backslash at i outside quotes and returns the offset of the last
// character it consumed.
func (s *splitter) backslash(i int) int {
	switch {
	case i+1 == len(s.line):
		s.out.TrailingBackslash = s.column(i)
		s.startWord()
		s.word.WriteByte('\\')
		return i
	case s.line[i+1] == '\n':
		return i + 1 // a line continuation: no blank, no line break
	default:
		s.startWord()
		_, size := utf8.DecodeRuneInString(s.line[i+1:])
		s.word.WriteString(s.line[i+1 : i+1+size])
		return i + size
	}
}

// doubleQuoted reads the double-quoted string opened at from into the word and returns the offset
// of the closing quote. $ and ` keep their meaning inside double quotes.
func (s *splitter) doubleQuoted(from int) (int, error) {
	s.startWord()
	for i := from + 1; i < len(s.line); i++ {
		switch c := s.line[i]; {
		case c == '"':
			return i, nil
		case c == '\\' && i+1 < len(s.line) && strings.IndexByte("\"\\$`\n", s.line[i+1]) >= 0:
			i++
			if s.line[i] != '\n' {
				s.word.WriteByte(s.line[i])
			}
		case c == '`' || c == '$' && expands(s.line, i, true):
			s.out.Syntax = append(s.out.Syntax, Construct{Text: operator(s.line, i), Column: s.column(i), Word: -1, InDoubleQuotes: true})
			s.word.WriteByte(c)
		default:
			s.word.WriteByte(c)
		}
	}
	return 0, s.errorAt(from, "unterminated double quote")
}

func (s *splitter) column(offset int) int { return utf8.RuneCountInString(s.line[:offset]) + 1 }

func (s *splitter) errorAt(offset int, msg string) error {
	return &Error{Column: s.column(offset), Msg: msg}
}

// expands tells whether the $ at line[i] starts an expansion: a parameter ($name, $1, $?, ${...}),
// a command or arithmetic substitution ($(...)) or, outside double quotes, bash's $'...' and $"...".
// Any other $ is kept literally by sh ("5$", "$/").
func expands(line string, i int, inDoubleQuotes bool) bool {
	if i+1 == len(line) {
		return false
	}
	switch c := line[i+1]; {
	case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
		return true
	case strings.IndexByte("{(@*#?-$!", c) >= 0:
		return true
	default:
		return !inDoubleQuotes && (c == '\'' || c == '"')
	}
}

// operator is the shell operator starting at line[i]: a two-character form (||, &&, >>, $(, ...)
// or one character.
func operator(line string, i int) string {
	if i+1 < len(line) {
		switch two := line[i : i+2]; two {
		case "||", "&&", ">>", "<<", "$(", "${", ";;", ">&", "<&", "&>":
			return two
		}
	}
	return line[i : i+1]
}
