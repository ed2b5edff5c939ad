package server

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// pipeGrace is how long a finished or killed process's output pipe may stay open (held by a
// child that outlived it) before it is closed and the child killed with the group.
const pipeGrace = 2 * time.Second

// processResult is what a process came to.
type processResult struct {
	output *cappedOutput
	// err is nil when the process exited with status 0.
	err error
}

// runProcess runs argv in a process group of its own, with its standard output and error in one
// bounded buffer. When ctx ends, the whole group is killed (a shell's children too), and whatever
// the group left running when the process returns is killed as well: no process outlives its task.
func runProcess(ctx context.Context, argv []string, maxOutput int) processResult {
	out := newCappedOutput(maxOutput)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// One writer for both: exec then gives the process a single pipe and copies it in one goroutine.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = pipeGrace
	err := cmd.Run()
	_ = killGroup(cmd)
	if err != nil && ctx.Err() != nil {
		err = contextFailure(ctx)
	}
	return processResult{output: out, err: err}
}

// killGroup kills the process group led by cmd's process, if it was started.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// contextFailure says why a task's context ended.
func contextFailure(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errTaskTimeout) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return context.Cause(ctx)
	}
	return fmt.Errorf("canceled: %w", context.Cause(ctx))
}

// errTaskTimeout is the cause of a task context that reached its timeout.
var errTaskTimeout = errors.New("timed out")

// cappedOutput keeps the beginning and the end of a process's output, at most max bytes in all,
// and counts what it dropped in between: a process printing gigabytes costs a fixed amount of
// memory. It is safe for concurrent writes.
type cappedOutput struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte // a ring once full; tailAt is the next write position
	tailAt  int
	tailMax int
	headMax int
	dropped int64
}

func newCappedOutput(max int) *cappedOutput {
	if max < 2 {
		max = 2
	}
	return &cappedOutput{headMax: max / 2, tailMax: max - max/2}
}

func (c *cappedOutput) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	if room := c.headMax - len(c.head); room > 0 {
		take := min(room, len(p))
		c.head = append(c.head, p[:take]...)
		p = p[take:]
	}
	for len(p) > 0 {
		if len(c.tail) < c.tailMax {
			take := min(c.tailMax-len(c.tail), len(p))
			c.tail = append(c.tail, p[:take]...)
			p = p[take:]
			continue
		}
		// The ring is full: the oldest tail bytes are dropped for the new ones.
		if len(p) >= c.tailMax {
			c.dropped += int64(c.tailMax) + int64(len(p)-c.tailMax)
			copy(c.tail, p[len(p)-c.tailMax:])
			c.tailAt = 0
			break
		}
		c.dropped += int64(len(p))
		for _, b := range p {
			c.tail[c.tailAt] = b
			c.tailAt = (c.tailAt + 1) % c.tailMax
		}
		break
	}
	return n, nil
}

// Bytes is the kept output, with a line saying how much was dropped from its middle.
func (c *cappedOutput) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]byte, 0, len(c.head)+len(c.tail)+64)
	out = append(out, c.head...)
	if c.dropped > 0 {
		out = append(out, fmt.Sprintf("\n[... %d bytes of output dropped (-max-output-bytes) ...]\n", c.dropped)...)
	}
	out = append(out, c.tail[c.tailAt:]...)
	out = append(out, c.tail[:c.tailAt]...)
	return out
}

// Truncated tells whether output was dropped.
func (c *cappedOutput) Truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped > 0
}
