package supervisor

import "syscall"

// childProcAttr makes the kernel SIGKILL a child when the supervisor dies without stopping it (e.g.
// SIGKILLed), so that no pod process outlives its supervisor. Children are forked from a thread that
// lives as long as the process (startOnSpawnerThread), since Pdeathsig watches the forking thread.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
