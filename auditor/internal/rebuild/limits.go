package rebuild

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits bound one build while it runs. Each is enforced during the build,
// not checked after it: a build over a limit is stopped and its rebuild
// fails naming the limit.
type Limits struct {
	// Memory bounds the resident memory (and swap) of all the build's
	// processes together, in bytes.
	Memory int64
	// Processes bounds the build's processes and threads together.
	Processes int64
	// Disk bounds the bytes the build may have in its tree and /tmp
	// together (allocated blocks or apparent size, whichever is larger,
	// plus 512 bytes per file or directory).
	Disk int64
	// CPUTime bounds the CPU time of all the build's processes together.
	CPUTime time.Duration
}

// Default limits.
const (
	DefaultMemory    = 8 << 30
	DefaultProcesses = 1024
)

// Limit names, as results and alerts name them (the keys of
// rebuild.limits in auditor.yaml).
const (
	LimitMemory    = "memory"
	LimitProcesses = "processes"
	LimitDisk      = "disk"
	LimitCPUTime   = "cpu_time"
)

func (l Limits) describe(name string) string {
	switch name {
	case LimitMemory:
		return fmt.Sprintf("%s %s", name, FormatBytes(l.Memory))
	case LimitProcesses:
		return fmt.Sprintf("%s %d", name, l.Processes)
	case LimitDisk:
		return fmt.Sprintf("%s %s", name, FormatBytes(l.Disk))
	case LimitCPUTime:
		return fmt.Sprintf("%s %v", name, l.CPUTime)
	}
	return name
}

// FormatBytes writes n in the largest binary unit that divides it, as the
// configuration accepts it back ("8GiB", "1536MiB", "100").
func FormatBytes(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseBytes reads a byte count: a number of bytes, or a number with one
// of the units KiB, MiB, GiB, TiB (or K, M, G, T, the same binary units).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("%q: want a number of bytes, optionally with a unit (KiB, MiB, GiB, TiB)", s)
	}
	shift := map[string]uint{"": 0, "B": 0, "K": 10, "KiB": 10, "M": 20, "MiB": 20, "G": 30, "GiB": 30, "T": 40, "TiB": 40}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want KiB, MiB, GiB or TiB)", s, unit)
	}
	if n > (1<<62)>>sh {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return n << sh, nil
}

// cgroup is the build's own control group: memory and pids controllers
// (cgroup v2, or the v1 hierarchies), and CPU accounting where there is
// some. The kernel enforces memory and pids; the watcher reads the
// counters to name the limit that stopped a build.
type cgroup struct {
	v2  bool
	mem string // directory of the memory controller's group (v2: the group)
	pid string // pids controller
	cpu string // cpuacct (v1) or the group (v2); "" without CPU accounting
}

// cgroupMounts maps each v1 controller to its mount point and root, and
// "" to the cgroup v2 mount, from /proc/self/mountinfo.
func cgroupMounts() map[string][2]string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string][2]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		root, point := a[3], a[4]
		switch b[0] {
		case "cgroup2":
			if _, seen := m[""]; !seen {
				m[""] = [2]string{point, root}
			}
		case "cgroup":
			for _, o := range strings.Split(b[2], ",") {
				if _, seen := m[o]; !seen {
					m[o] = [2]string{point, root}
				}
			}
		}
	}
	return m
}

// ownCgroups maps each v1 controller (and "" for v2) to this process's
// group, from /proc/self/cgroup.
func ownCgroups() map[string]string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			m[""] = f[2]
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			m[c] = f[2]
		}
	}
	return m
}

// groupDir is the directory of this process's group of controller c.
func groupDir(mounts map[string][2]string, own map[string]string, c string) (string, bool) {
	mt, ok := mounts[c]
	p, ok2 := own[c]
	if !ok || !ok2 {
		return "", false
	}
	rel := p
	if mt[1] != "/" {
		if !strings.HasPrefix(p, mt[1]) {
			return "", false
		}
		rel = strings.TrimPrefix(p, mt[1])
	}
	return filepath.Join(mt[0], rel), true
}

var cgroupSeq atomic.Int64

// newCgroup creates a group for one build with the limits l, or says why
// it cannot (no writable memory and pids controllers).
func newCgroup(l Limits) (*cgroup, error) {
	mounts, own := cgroupMounts(), ownCgroups()
	name := fmt.Sprintf("attestlog-build-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	mk := func(c string) (string, error) {
		d, ok := groupDir(mounts, own, c)
		if !ok {
			return "", fmt.Errorf("no %s cgroup", c)
		}
		d = filepath.Join(d, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
		return d, nil
	}
	var errV1 error
	if _, ok := mounts["memory"]; ok {
		cg := &cgroup{}
		var err error
		if cg.mem, err = mk("memory"); err == nil {
			if cg.pid, err = mk("pids"); err == nil {
				if d, err := mk("cpuacct"); err == nil {
					cg.cpu = d
				}
				err = errors.Join(
					write(cg.mem, "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10)),
					write(cg.pid, "pids.max", strconv.FormatInt(l.Processes, 10)))
				// With swap accounting, swap counts against the limit too.
				if _, serr := os.Stat(filepath.Join(cg.mem, "memory.memsw.limit_in_bytes")); serr == nil {
					err = errors.Join(err, write(cg.mem, "memory.memsw.limit_in_bytes", strconv.FormatInt(l.Memory, 10)))
				}
			}
		}
		if err == nil {
			return cg, nil
		}
		cg.remove()
		errV1 = fmt.Errorf("cgroup v1: %w", err)
	}
	if _, ok := mounts[""]; ok {
		d, ok := groupDir(mounts, own, "")
		if ok {
			ctl, _ := os.ReadFile(filepath.Join(d, "cgroup.controllers"))
			if !strings.Contains(" "+string(ctl)+" ", " memory ") || !strings.Contains(" "+strings.TrimSpace(string(ctl))+" ", " pids ") {
				return nil, errors.Join(errV1, fmt.Errorf("cgroup v2: the memory and pids controllers are not delegated to %s (it has %q)", d, strings.TrimSpace(string(ctl))))
			}
			// Enabling controllers for children fails (EBUSY) in a group
			// that holds processes, unless it is the root.
			if err := write(d, "cgroup.subtree_control", "+memory +pids"); err != nil {
				return nil, errors.Join(errV1, fmt.Errorf("cgroup v2: %w", err))
			}
			g := filepath.Join(d, name)
			if err := os.Mkdir(g, 0o755); err != nil {
				return nil, errors.Join(errV1, fmt.Errorf("cgroup v2: %w", err))
			}
			cg := &cgroup{v2: true, mem: g, pid: g, cpu: g}
			err := errors.Join(write(g, "memory.max", strconv.FormatInt(l.Memory, 10)),
				write(g, "memory.swap.max", "0"),
				write(g, "pids.max", strconv.FormatInt(l.Processes, 10)))
			if err != nil {
				cg.remove()
				return nil, errors.Join(errV1, fmt.Errorf("cgroup v2: %w", err))
			}
			return cg, nil
		}
	}
	if errV1 == nil {
		errV1 = errors.New("no cgroup file system is mounted")
	}
	return nil, errV1
}

func write(dir, file, v string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func (c *cgroup) String() string {
	if c.v2 {
		return "cgroup v2"
	}
	return "cgroup v1"
}

// add moves process pid into every controller's group.
func (c *cgroup) add(pid int) error {
	seen := map[string]bool{}
	for _, d := range []string{c.mem, c.pid, c.cpu} {
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		if err := write(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// counter reads "key N" from a flat-keyed file.
func counter(dir, file, key string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// oom reports whether the kernel killed a process of the group for
// memory.
func (c *cgroup) oom() bool {
	if c.v2 {
		return counter(c.mem, "memory.events", "oom_kill") > 0
	}
	return counter(c.mem, "memory.oom_control", "oom_kill") > 0 || counter(c.mem, "memory.oom_control", "under_oom") > 0
}

// pidsMax reports whether a fork failed at the process limit.
func (c *cgroup) pidsMax() bool { return counter(c.pid, "pids.events", "max") > 0 }

// cpuTime is the group's CPU time, or -1 without CPU accounting.
func (c *cgroup) cpuTime() time.Duration {
	switch {
	case c.cpu == "":
		return -1
	case c.v2:
		return time.Duration(counter(c.cpu, "cpu.stat", "usage_usec")) * time.Microsecond
	}
	b, err := os.ReadFile(filepath.Join(c.cpu, "cpuacct.usage"))
	if err != nil {
		return -1
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(n)
}

// kill kills every process of the group until none is left (or a second
// has passed).
func (c *cgroup) kill() {
	if c.v2 && write(c.pid, "cgroup.kill", "1") == nil {
		return
	}
	for range 100 {
		b, err := os.ReadFile(filepath.Join(c.pid, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// remove kills what is left and removes the groups.
func (c *cgroup) remove() {
	if c.pid != "" {
		c.kill()
	}
	for _, d := range []string{c.cpu, c.pid, c.mem} {
		if d == "" {
			continue
		}
		for range 50 {
			if err := os.Remove(d); err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// procInfo is what /proc/PID/stat says of one process.
type procInfo struct {
	ppid int
	cpu  time.Duration // its own and its waited-for children's
}

// privateRSS is the resident memory of pid that is not shared with other
// processes (file-backed shared pages, such as libraries, would otherwise
// count once per process), from /proc/PID/statm.
func privateRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0
	}
	res, _ := strconv.ParseInt(f[1], 10, 64)
	shared, _ := strconv.ParseInt(f[2], 10, 64)
	return max(res-shared, 0) * int64(os.Getpagesize())
}

var clockTick = time.Second / 100 // USER_HZ is 100 on every Linux ABI

func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 22 {
		return procInfo{}, false
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return procInfo{
		ppid: int(n(4)),
		cpu:  time.Duration(n(14)+n(15)+n(16)+n(17)) * clockTick,
	}, true
}

// tree sums the processes (threads counted), CPU time and resident memory
// (not shared) of root and its descendants, from /proc: what bounds a build where no
// cgroup can be made.
func tree(root int) (procs int64, cpu time.Duration, rss int64) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, 0
	}
	info := map[int]procInfo{}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			info[pid] = p
			children[p.ppid] = append(children[p.ppid], pid)
		}
	}
	q := []int{root}
	for len(q) > 0 {
		pid := q[0]
		q = q[1:]
		p, ok := info[pid]
		if !ok {
			continue
		}
		rss += privateRSS(pid)
		threads := int64(1)
		if ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task"); err == nil {
			threads = int64(len(ents))
		}
		procs += threads
		cpu += p.cpu
		q = append(q, children[pid]...)
	}
	return procs, cpu, rss
}

// diskUsage is what the limit counts of the trees under dirs: per entry
// its allocated blocks or apparent size, whichever is larger, plus 512.
// It stops counting beyond limit.
func diskUsage(limit int64, dirs ...string) int64 {
	var n int64
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			n += 512
			if fi, err := e.Info(); err == nil {
				sz := fi.Size()
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					sz = max(sz, st.Blocks*512)
				}
				n += sz
			}
			if n > limit {
				return fs.SkipAll
			}
			return nil
		})
		if n > limit {
			break
		}
	}
	return n
}
