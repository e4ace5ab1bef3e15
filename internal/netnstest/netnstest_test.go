package netnstest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as a host's program: an echo server
// (NETNSTEST_LISTEN=addr) or a client that dials one and checks the echo
// (NETNSTEST_DIAL=addr; exit status 0 if it came back within 2 s).
func TestMain(m *testing.M) {
	if addr := os.Getenv("NETNSTEST_LISTEN"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(line))
			}()
		}
	}
	if addr := os.Getenv("NETNSTEST_DIAL"); addr != "" {
		if err := echo(addr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func echo(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		return fmt.Errorf("echo: %q, %v", line, err)
	}
	return nil
}

// TestPartition: a host cut off from another reaches it no more (a
// connection neither succeeds nor fails at once: it times out), while
// the third host and the test process still reach it; after heal, it does
// again.
func TestPartition(t *testing.T) {
	n := New(t, "a", "b", "c")
	a, b, c := n.Hosts[0], n.Hosts[1], n.Hosts[2]
	srv := b.Command(os.Args[0])
	srv.Env = append(os.Environ(), "NETNSTEST_LISTEN="+b.IP+":9000")
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGKILL); srv.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("the echo server in host b: %q, %v", line, err)
	}
	addr := b.IP + ":9000"
	dial := func(from Host) (time.Duration, error) {
		cmd := from.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "NETNSTEST_DIAL="+addr)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		return time.Since(start), err
	}
	reach := func(what string, from Host) {
		t.Helper()
		if _, err := dial(from); err != nil {
			t.Errorf("%s: host %s does not reach b: %v", what, from.Name, err)
		}
	}
	reach("before the partition", a)
	heal := n.Partition(t, a, b)
	if took, err := dial(a); err == nil {
		t.Error("host a reaches b across the partition")
	} else if took < 2*time.Second {
		t.Errorf("host a's connection to b failed after %v (%v): want it lost silently, until the 2 s timeout", took, err)
	}
	reach("during the partition", c)
	if err := echo(addr); err != nil {
		t.Errorf("the test process does not reach b during the partition: %v", err)
	}
	heal()
	reach("after the healing", a)
}
