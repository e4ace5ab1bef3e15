package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: Linux exports
// them in USER_HZ, 100 a second on every architecture's ABI.
const userHZ = 100

// ProcCPU is the CPU time (user + system) process pid has used so far,
// from /proc/PID/stat (Linux): what a process costs, whatever else the
// machine runs. Its resolution is 10 ms.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields counted from the last ')' on are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(b[i+1:])
	// After ')': state (3), ppid (4), … utime (14), stime (15).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// CPUMeter measures the CPU time processes use over a run.
type CPUMeter struct {
	pids  []int
	start time.Duration
}

// StartCPU starts measuring the processes pids.
func StartCPU(pids ...int) (*CPUMeter, error) {
	m := &CPUMeter{pids: pids}
	var err error
	m.start, err = m.total()
	return m, err
}

func (m *CPUMeter) total() (time.Duration, error) {
	var t time.Duration
	for _, p := range m.pids {
		c, err := ProcCPU(p)
		if err != nil {
			return 0, err
		}
		t += c
	}
	return t, nil
}

// Used is the CPU time the processes used since StartCPU.
func (m *CPUMeter) Used() (time.Duration, error) {
	t, err := m.total()
	return t - m.start, err
}

// PerEntry formats CPU time used per acknowledged entry.
func PerEntry(cpu time.Duration, entries int) string {
	if entries == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%d µs", (cpu / time.Duration(entries)).Microseconds())
}
