//go:build !linux

package driver

import "os/exec"

func dieWithParent(*exec.Cmd) {}

// DieWithParent makes cmd die with its parent where the system supports it
// (Linux); elsewhere it does nothing.
func DieWithParent(cmd *exec.Cmd) { dieWithParent(cmd) }
