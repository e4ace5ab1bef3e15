// Package netnstest makes separate hosts for a test out of Linux network
// namespaces: a bridge in the test's namespace and, per host, a namespace
// joined to it by a veth pair, with an address of its own on a private
// /24. Processes started in a host see only its loopback and the bridge;
// the test process reaches every host through the bridge. Everything is
// removed when the test ends.
//
// It needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2's ip; without
// them the test is skipped, or fails under ATTESTLOG_STRICT=1.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/internal/testenv"
)

// Net is the hosts of one test.
type Net struct {
	Hosts  []Host
	bridge string
}

// Host is one network namespace on the bridge.
type Host struct {
	Name string // the namespace's name (ip netns)
	IP   string // its address on the bridge
}

// Command runs name in the host's namespace. It is exec'd by ip netns
// exec, so its PID is the program's own (kill -9 reaches it).
func (h Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// New makes a host for each of names (short words: they name the
// namespaces), at 10.x.y.2, .3, … on a fresh bridge at 10.x.y.1.
func New(t testing.TB, names ...string) *Net {
	t.Helper()
	ip := testenv.LookPath(t, "ip")
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	prefix := fmt.Sprintf("10.%d.%d", 200+int(b[0])%50, int(b[1])%250)
	n := &Net{bridge: "alb" + id}
	run := func(args ...string) error {
		out, err := exec.Command(ip, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	must := func(args ...string) {
		t.Helper()
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := run("link", "add", n.bridge, "type", "bridge"); err != nil {
		testenv.Missing(t, "network namespaces (root and iproute2)", err)
	}
	t.Cleanup(func() { run("link", "del", n.bridge) })
	must("addr", "add", prefix+".1/24", "dev", n.bridge)
	must("link", "set", n.bridge, "up")
	for i, name := range names {
		h := Host{Name: fmt.Sprintf("al%s-%s", id, name), IP: fmt.Sprintf("%s.%d", prefix, i+2)}
		must("netns", "add", h.Name)
		t.Cleanup(func() { run("netns", "del", h.Name) })
		outer, inner := fmt.Sprintf("al%sh%d", id, i), fmt.Sprintf("al%sn%d", id, i)
		must("link", "add", outer, "type", "veth", "peer", "name", inner)
		t.Cleanup(func() { run("link", "del", outer) })
		must("link", "set", outer, "master", n.bridge)
		must("link", "set", outer, "up")
		must("link", "set", inner, "netns", h.Name)
		must("-n", h.Name, "addr", "add", h.IP+"/24", "dev", inner)
		must("-n", h.Name, "link", "set", inner, "up")
		must("-n", h.Name, "link", "set", "lo", "up")
		n.Hosts = append(n.Hosts, h)
	}
	return n
}
