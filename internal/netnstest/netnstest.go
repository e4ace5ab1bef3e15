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
	ip     string // iproute2's ip
}

// Host is one network namespace on the bridge.
type Host struct {
	Name string // the namespace's name (ip netns)
	IP   string // its address on the bridge
	dev  string // its end of the veth pair
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
		outer, inner := fmt.Sprintf("al%sh%d", id, i), fmt.Sprintf("al%sn%d", id, i)
		h := Host{Name: fmt.Sprintf("al%s-%s", id, name), IP: fmt.Sprintf("%s.%d", prefix, i+2), dev: inner}
		must("netns", "add", h.Name)
		t.Cleanup(func() { run("netns", "del", h.Name) })
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
	n.ip = ip
	return n
}

// nowhere is the hardware address a partitioned host's packets are sent
// to: locally administered, on no interface.
const nowhere = "02:00:5e:00:de:ad"

// Partition cuts host a off from each of others, both ways, silently: each
// side sends its packets for the other to a hardware address no interface
// has (a permanent neighbour entry), and the bridge loses them, as a real
// partition would. Nothing fails at once: connections already open stop
// answering and new ones do not get through, until their timeouts. The
// test process and the hosts not named still reach a, and a them. heal
// ends the partition (so does the end of the test, with the namespaces).
func (n *Net) Partition(t testing.TB, a Host, others ...Host) (heal func()) {
	t.Helper()
	neigh := func(op string, from, to Host) error {
		args := []string{"-n", from.Name, "neigh", op, to.IP}
		if op == "replace" {
			args = append(args, "lladdr", nowhere)
		}
		args = append(args, "dev", from.dev)
		if op == "replace" {
			args = append(args, "nud", "permanent")
		}
		if out, err := exec.Command(n.ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	for _, b := range others {
		for _, pair := range [][2]Host{{a, b}, {b, a}} {
			if err := neigh("replace", pair[0], pair[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return func() {
		t.Helper()
		for _, b := range others {
			for _, pair := range [][2]Host{{a, b}, {b, a}} {
				if err := neigh("del", pair[0], pair[1]); err != nil {
					t.Error(err)
				}
			}
		}
	}
}
