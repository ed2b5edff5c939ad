package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pennant/pennant/test/traffic/podinfo"
)

// child runs the process of one pod, restarting it when it exits by itself, until requestStop.
type child struct {
	spec ChildSpec
	stop chan struct{} // closed by requestStop
	kill chan struct{} // closed by killNow: SIGKILL without waiting out the grace period
	done chan struct{} // closed when the process is gone for good

	killOnce sync.Once

	mu       sync.Mutex
	pid      int
	stopping bool
}

func (c *child) requestStop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopping {
		c.stopping = true
		close(c.stop)
	}
}

// killNow ends a stopping child's grace period at once: kwok hands a deleted pod's IP to a new pod
// right away (a kubelet would not while the old pod's sandbox exists), and the old process must not
// answer for the new pod nor keep it from binding the address.
func (c *child) killNow() { c.killOnce.Do(func() { close(c.kill) }) }

func (c *child) status() Child {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Child{Pod: c.spec.Pod, Addrs: c.spec.Addrs, Version: c.spec.Version, PID: c.pid, Stopping: c.stopping}
}

func (c *child) setPID(pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pid = pid
}

// startChild starts supervising spec's process once every child in blockers (stopping children of
// other pods that held the same IP) is gone; the caller holds s.mu.
func (s *Supervisor) startChild(spec ChildSpec, blockers []*child) *child {
	c := &child{spec: spec, stop: make(chan struct{}), kill: make(chan struct{}), done: make(chan struct{})}
	s.all[c] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(c.done)
		defer func() {
			s.mu.Lock()
			delete(s.all, c)
			s.mu.Unlock()
		}()
		for _, b := range blockers {
			select {
			case <-b.done:
			case <-c.stop:
				return
			}
		}
		s.supervise(c)
	}()
	return c
}

// supervise runs c's process like a kubelet runs a container with restartPolicy Always: an exit of
// its own is followed by a restart after a backoff that grows while the process keeps failing soon.
func (s *Supervisor) supervise(c *child) {
	backoff := s.opts.RestartBackoff
	for {
		started := time.Now()
		stopped := s.runOnce(c)
		if stopped {
			s.releasePod(c.spec)
			return
		}
		if time.Since(started) > time.Minute {
			backoff = s.opts.RestartBackoff
		}
		s.log.Printf("restart %s in %v", c.spec.Pod, backoff)
		select {
		case <-c.stop:
			s.log.Printf("stop %s: pod gone while waiting to restart", c.spec.Pod)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.opts.MaxRestartBackoff)
	}
}

// runOnce starts the process and waits for it to exit or for a stop request; it reports whether
// the child was stopped (as opposed to exiting or failing to start by itself).
func (s *Supervisor) runOnce(c *child) (stopped bool) {
	spec := c.spec
	out, closeOut, err := s.output(spec)
	if err != nil {
		s.log.Printf("exit %s: no log file: %v", spec.Pod, err)
		return false
	}
	defer closeOut()
	// The supervisor binds the pod's ports itself and hands them to the process: from the moment
	// the pod is Ready (kwok makes it so at once, without a readiness probe) a connection waits in
	// the backlog until the process accepts it, instead of being refused while it starts.
	listeners, err := bindFiles(spec.Addrs)
	if err != nil {
		s.log.Printf("exit %s: cannot listen: %v", spec.Pod, err)
		return false
	}
	cmd := exec.Command(s.binary, "serve", "-listen", strings.Join(spec.Addrs, ","))
	cmd.Env = append(slices.Clip(spec.Env), fmt.Sprintf("%s=%d", podinfo.ListenFDsEnv, len(listeners)))
	cmd.ExtraFiles = listeners
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childProcAttr()
	err = startOnSpawnerThread(cmd)
	for _, f := range listeners {
		_ = f.Close() // the process has its own copies
	}
	if err != nil {
		s.log.Printf("exit %s: cannot start %s: %v", spec.Pod, s.binary, err)
		return false
	}
	pid := cmd.Process.Pid
	c.setPID(pid)
	defer c.setPID(0)
	s.log.Printf("start %s ip=%s listen=%s version=%s pid=%d", spec.Pod, spec.IP, strings.Join(spec.Addrs, ","), spec.Version, pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	select {
	case err := <-exited:
		s.log.Printf("exit %s pid=%d by itself: %s", spec.Pod, pid, exitText(err))
		return false
	case <-c.stop:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	how := "after SIGTERM"
	timer := time.NewTimer(spec.Grace)
	defer timer.Stop()
	var err2 error
	select {
	case err2 = <-exited:
	case <-timer.C:
		_ = cmd.Process.Kill()
		err2 = <-exited
		how = "SIGKILLed after the grace period of " + spec.Grace.String()
	case <-c.kill:
		_ = cmd.Process.Kill()
		err2 = <-exited
		how = "SIGKILLed early: a new pod has its IP"
	}
	s.log.Printf("stop %s ip=%s pid=%d %s: %s", spec.Pod, spec.IP, pid, how, exitText(err2))
	return true
}

func exitText(err error) string {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "exit code 0"
	case errors.As(err, &exit):
		return exit.ProcessState.String()
	}
	return err.Error()
}

// startOnSpawnerThread starts cmd from one OS thread that lives as long as the process. Pdeathsig
// (see childProcAttr) fires when the thread that forked the child exits, not the process, and Go
// ends a thread when a goroutine locked to it returns: forking from a goroutine that stays locked to
// its thread forever makes "the parent died" mean the supervisor's process died.
func startOnSpawnerThread(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must outlive every child
			for req := range spawnRequests {
				req.done <- req.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnerOnce   sync.Once
	spawnRequests chan spawnRequest
)

// bindFiles listens on every address and returns the sockets as files to hand to a process.
func bindFiles(addrs []string) ([]*os.File, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, err
		}
		f, err := l.(*net.TCPListener).File()
		_ = l.Close() // File returned a duplicate
		if err != nil {
			closeAll()
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}
