package driver

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd if the process that started it
// dies first (a test binary that panics), so that no peer outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// DieWithParent is dieWithParent for other packages' helper processes.
func DieWithParent(cmd *exec.Cmd) { dieWithParent(cmd) }
