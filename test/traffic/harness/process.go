// Package harness runs Pennant's real-traffic stack on the local control plane: Traefik reading the
// routes Pennant writes, one real process per demo pod (test/traffic/cmd/pods), Prometheus scraping
// Traefik and the pods, the pennant binary, and load through the proxy whose every response is
// attributed to the workload that served it. `make e2e` (test/traffic) asserts on what it measures;
// `make demo` (test/traffic/cmd/demo) prints it.
//
// Everything runs on the machine's loopback inside hack/netns.sh's network namespace, where the
// pods' IPs (kwok's 10.244.0.0/16) are local.
package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a child process of the harness, its output in a log file.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs binary with args, its output appended to dir/<name>.log. The child dies with the
// harness (Pdeathsig), so that a killed test leaves no proxy or controller behind.
func start(dir, name, binary string, args []string, env ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Alive is an error naming the process and its last log lines once it has exited.
func (p *Process) Alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.Name, p.err, p.Log, p.Tail(15))
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group and waits up to grace before SIGKILL.
func (p *Process) Stop(grace time.Duration) {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Process) Kill() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Tail is the last n lines of the log.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freeAddr is a free 127.0.0.1 port (free when asked; the caller binds it soon after).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// fatal marks an error of a poll condition that ends the wait at once (a process exited).
type fatal struct{ error }

func (f fatal) Unwrap() error { return f.error }

// poll calls cond every interval until it returns true, a fatal error, the timeout or ctx ends.
func poll(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		var f fatal
		if errors.As(err, &f) {
			return fmt.Errorf("waiting for %s: %w", what, f.error)
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}
