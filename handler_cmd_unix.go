//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup starts the command in a process group of its own, so
// that killProcessGroup reaches the children it starts too.
func setProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills the command's whole process group.
func killProcessGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		p.Kill()
	}
}
