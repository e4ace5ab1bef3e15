package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/proxy"
	"github.com/attestlog/attestlog/internal/demo/chat"
	"github.com/attestlog/attestlog/internal/demo/fleet"
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/verify"
)

// channelFigure is one line of the report: the channel's figure, its
// baseline's, and their ratio.
type channelFigure struct {
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Channel  float64 `json:"channel"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"` // channel/baseline
	Goal     string  `json:"goal,omitempty"`
	Note     string  `json:"note,omitempty"`
}

type benchChannelReport struct {
	GPUs    int             `json:"gpus"`
	Figures []channelFigure `json:"figures"`
	// Reports is, per number of clients, the hardware reports the agent
	// asked for in the window (key set lifetime LifetimeSeconds).
	Reports         []channelReports `json:"reports_vs_clients"`
	LifetimeSeconds float64          `json:"reports_key_lifetime_seconds"`
	// Memory is the agent's resident memory per open connection.
	Memory []channelMemory `json:"memory_per_connection"`
	// Limit is what the agent answered the connection past its limit.
	Limit string `json:"connection_limit_answer,omitempty"`
}

type channelReports struct {
	Clients  int     `json:"clients"`
	Requests int64   `json:"requests"`
	Reports  int64   `json:"reports"`
	PerHour  float64 `json:"reports_per_hour"`
	Failed   int64   `json:"failed"`
	FirstErr string  `json:"first_error,omitempty"`
}

type channelMemory struct {
	Connections int     `json:"connections"`
	RSSDeltaMiB float64 `json:"rss_delta_mib"`
	PerConnKiB  float64 `json:"per_connection_kib"`
}

// ChannelOptions are the options of 'attestlog bench channel'.
type ChannelOptions struct {
	// Iterations is how many new clients and warm requests are measured
	// each way; StreamIterations how many streams are read each way, per
	// stream kind. Both positive.
	Iterations, StreamIterations int
	// Clients are the numbers of concurrent clients for the
	// hardware-reports figure, each run for Window (at least 1s).
	Clients []int
	Window  time.Duration
	// Connections are the numbers of open connections for the memory
	// figure; the last is the agent's connection limit.
	Connections []int
	// GPUs is the number of demo GPUs the enclave attests, 0 to 8.
	GPUs int
	// JSON prints the report as JSON.
	JSON bool
}

// Channel measures the attested channel against its baselines in one
// run, reporting on stdout (progress on stderr): a new client against
// plain TLS, warm requests, streamed throughput against direct, hardware
// reports against clients, and the agent's memory per connection (the
// agent then runs as 'attestlog enclave', this binary).
func Channel(ctx context.Context, o ChannelOptions, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "attestlog-bench-channel-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "bench channel: "+format+"\n", a...) }

	f, err := fleet.New(dir, o.GPUs)
	if err != nil {
		return err
	}
	v, err := f.Verifier()
	if err != nil {
		return err
	}
	upURL, err := benchUpstream(ctx)
	if err != nil {
		return err
	}
	agentURL, _, err := benchAgent(ctx, f, upURL, agent.Options{})
	if err != nil {
		return err
	}
	rep := &benchChannelReport{GPUs: o.GPUs}
	add := func(fg channelFigure) {
		fg.Ratio = fg.Channel / fg.Baseline
		rep.Figures = append(rep.Figures, fg)
		say("%-40s channel %10.4g %-6s baseline %10.4g  ratio %.3f %s", fg.Name, fg.Channel, fg.Unit, fg.Baseline, fg.Ratio, fg.Goal)
	}

	// 1. A new client: connect, verify, one request, against a plain TLS
	// client's connect and request to the same agent.
	say("new clients: %d each way, against %s", o.Iterations, agentURL)
	shared := channel.NewVerifier(v, time.Hour)
	models := agentURL + "/v1/models"
	var tPlain, tShared, tCold time.Duration
	for range o.Iterations {
		t0 := time.Now()
		pc := plainTLSClient()
		if err := benchGet(ctx, pc, models); err != nil {
			return fmt.Errorf("plain TLS: %w", err)
		}
		pc.CloseIdleConnections()
		t1 := time.Now()
		c, err := channel.New(shared, agentURL)
		if err != nil {
			return err
		}
		if err := benchGet(ctx, c.HTTPClient(), models); err != nil {
			return fmt.Errorf("attested channel: %w", err)
		}
		c.CloseIdleConnections()
		t2 := time.Now()
		c, _ = channel.New(channel.NewVerifier(v, 0), agentURL)
		if err := benchGet(ctx, c.HTTPClient(), models); err != nil {
			return fmt.Errorf("attested channel: %w", err)
		}
		c.CloseIdleConnections()
		tPlain, tShared, tCold = tPlain+t1.Sub(t0), tShared+t2.Sub(t1), tCold+time.Since(t2)
	}
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(o.Iterations) }
	add(channelFigure{Name: "new client, document's verdict at hand", Unit: "ms", Channel: ms(tShared), Baseline: ms(tPlain), Goal: "(goal <= 1.3)",
		Note: "connect, read the attestation document over the connection, pin, one request; the verdict of this document already made in the process (a proxy or service with many users)"})
	add(channelFigure{Name: "new client, verifying everything", Unit: "ms", Channel: ms(tCold), Baseline: ms(tPlain),
		Note: "as above, and the client verifies the document itself: hardware chain, GPUs, log proof, index proof"})

	// 2. Warm requests on kept-alive connections.
	pc := plainTLSClient()
	hc, _, err := channel.HTTPClient(ctx, v, agentURL)
	if err != nil {
		return err
	}
	benchGet(ctx, pc, models)
	benchGet(ctx, hc, models)
	var tw0, tw1 time.Duration
	timed := func(c *http.Client, d *time.Duration) error {
		t0 := time.Now()
		err := benchGet(ctx, c, models)
		*d += time.Since(t0)
		return err
	}
	for i := range o.Iterations * 5 {
		// Each goes first half of the time.
		first, second, d1, d2 := pc, hc, &tw0, &tw1
		if i%2 == 1 {
			first, second, d1, d2 = hc, pc, &tw1, &tw0
		}
		if err := errors.Join(timed(first, d1), timed(second, d2)); err != nil {
			return err
		}
	}
	us := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(o.Iterations*5) }
	add(channelFigure{Name: "warm request", Unit: "µs", Channel: us(tw1), Baseline: us(tw0), Goal: "(goal <= 1.05)",
		Note: "GET on a kept-alive connection: plain TLS against the attested channel (pinned, verdict current)"})

	// 3. Streams through agent and proxy against the service directly.
	c, _ := channel.New(channel.NewVerifier(v, 0), agentURL)
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go httpserve.Serve(ctx, httpserve.NewServer(proxy.New(c, nil).Handler()), pln)
	proxyURL := "http://" + pln.Addr().String()
	lc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, s := range []struct {
		name    string
		n, size int
		rate    float64
		note    string
	}{
		{"stream: 4096 events of 256 B", 4096, 256, 0, "server-sent events, each flushed by the service: a model's tokens"},
		{"stream: 256 x 64 KiB, unpaced", 256, 64 << 10, 0, "bulk bytes as fast as the CPU moves them: on loopback the two extra hops' TLS and copies are the whole cost"},
		{"stream: 256 x 64 KiB at 50 MB/s", 256, 64 << 10, 50e6, "bulk bytes from a service (or over a link) at 50 MB/s"},
		{"stream: 512 x 64 KiB at 1 Gbit/s", 512, 64 << 10, 125e6, "bulk bytes over a 1 Gbit/s link (125 MB/s)"},
	} {
		q := fmt.Sprintf("/stream?n=%d&size=%d&rate=%.0f", s.n, s.size, s.rate)
		direct, through := upURL+q, proxyURL+q
		benchGet(ctx, lc, direct)
		if err := benchGet(ctx, lc, through); err != nil {
			return fmt.Errorf("stream through agent and proxy: %w", err)
		}
		var td, tt time.Duration
		for range o.StreamIterations {
			t0 := time.Now()
			if err := benchGet(ctx, lc, direct); err != nil {
				return err
			}
			t1 := time.Now()
			if err := benchGet(ctx, lc, through); err != nil {
				return err
			}
			td, tt = td+t1.Sub(t0), tt+time.Since(t1)
		}
		mb := float64(o.StreamIterations*s.n*s.size) / 1e6
		add(channelFigure{Name: s.name, Unit: "MB/s", Channel: mb / tt.Seconds(), Baseline: mb / td.Seconds(), Goal: "(goal >= 0.95)", Note: s.note + "; through agent and proxy against the service directly"})
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// 4. Hardware reports against the number of clients: an agent whose
	// key sets live 8 s (rotated every 4 s: 10,800 times faster than
	// the default 24 h, so that rotations happen within the window),
	// under each number of clients for the same window.
	const life = 8 * time.Second
	rep.LifetimeSeconds = life.Seconds()
	rURL, ra, err := benchAgent(ctx, f, upURL, agent.Options{Lifetime: life})
	if err != nil {
		return err
	}
	for _, n := range o.Clients {
		r := reportsUnderClients(ctx, v, ra, rURL, n, o.Window)
		rep.Reports = append(rep.Reports, r)
		say("%5d clients for %v: %d requests (%d failed), %d hardware reports (%.0f an hour with %v key sets)", n, o.Window, r.Requests, r.Failed, r.Reports, r.PerHour, life)
		if r.FirstErr != "" {
			say("      the first failure: %s", r.FirstErr)
		}
	}

	// 5. The agent's memory per open connection, as a process of its own.
	mem, limit, err := agentMemory(ctx, dir, f, upURL, o.Connections, say)
	if err != nil {
		return fmt.Errorf("agent memory: %w", err)
	}
	rep.Memory, rep.Limit = mem, limit

	if o.JSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintf(stdout, "attested channel (demo enclave, %d GPU(s)), each figure against its baseline in this run:\n", o.GPUs)
	fmt.Fprintf(stdout, "%-40s %14s %14s %7s\n", "", "channel", "baseline", "ratio")
	for _, fg := range rep.Figures {
		fmt.Fprintf(stdout, "%-40s %9.4g %-4s %9.4g %-4s %7.3f %s\n", fg.Name, fg.Channel, fg.Unit, fg.Baseline, fg.Unit, fg.Ratio, fg.Goal)
	}
	fmt.Fprintf(stdout, "hardware reports (key sets of %v, rotated every %v) against clients, %v each:\n", life, life/2, o.Window)
	for _, r := range rep.Reports {
		fmt.Fprintf(stdout, "  %6d clients: %7d requests, %d failed, %3d reports (%.0f an hour)\n", r.Clients, r.Requests, r.Failed, r.Reports, r.PerHour)
	}
	fmt.Fprintf(stdout, "agent memory (resident, attestlog enclave):\n")
	for _, m := range rep.Memory {
		fmt.Fprintf(stdout, "  %6d open connections: +%.1f MiB, %.1f KiB a connection\n", m.Connections, m.RSSDeltaMiB, m.PerConnKiB)
	}
	fmt.Fprintf(stdout, "  one connection past its limit: %s\n", rep.Limit)
	return nil
}

func plainTLSClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 4}}
}

func benchGet(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return err
}

// benchUpstream serves the demo chat service, and at /stream n events of
// size bytes (at rate bytes a second when rate > 0), each flushed.
func benchUpstream(ctx context.Context) (string, error) {
	mux := http.NewServeMux()
	mux.Handle("/", (&chat.Server{}).Handler())
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		rate, _ := strconv.ParseFloat(r.URL.Query().Get("rate"), 64)
		if n < 1 || size < 16 || size > 1<<20 {
			http.Error(w, "n, size", http.StatusBadRequest)
			return
		}
		ev := []byte("data: " + strings.Repeat("x", size-8) + "\n\n")
		w.Header().Set("Content-Type", "text/event-stream")
		t0 := time.Now()
		for i := range n {
			if rate > 0 {
				time.Sleep(time.Until(t0.Add(time.Duration(float64(i*size) / rate * float64(time.Second)))))
			}
			if _, err := w.Write(ev); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := httpserve.NewServer(mux)
	srv.WriteTimeout = 0
	go httpserve.Serve(ctx, srv, ln)
	return "http://" + ln.Addr().String(), nil
}

// benchAgent runs an enclave agent for f in front of upstream, on
// loopback, until ctx ends.
func benchAgent(ctx context.Context, f *fleet.Fleet, upstream string, o agent.Options) (string, *agent.Agent, error) {
	o.Source, o.Staple = f.Enclave, f.Staple
	if f.Enclave.GPUCount() > 0 {
		o.GPUs = f.Enclave
	}
	a, err := agent.New(ctx, o)
	if err != nil {
		return "", nil, err
	}
	if err := a.RefreshStaple(ctx); err != nil {
		return "", nil, err
	}
	go a.Run(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(upstream)
	go a.ServeTLS(ctx, ln, a.Handler(u))
	return "https://" + ln.Addr().String(), a, nil
}

// reportsUnderClients runs n clients for window: each connects, verifies
// and sends requests (a new client each time it gets an answer, half of
// the time: new clients and kept-alive ones), and counts the hardware
// reports the agent asked for meanwhile.
func reportsUnderClients(ctx context.Context, v *verify.Verifier, a *agent.Agent, u string, n int, window time.Duration) channelReports {
	cv := channel.NewVerifier(v, 0)
	wctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	start := a.Reports()
	var reqs, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var c *channel.Client
			for j := 0; wctx.Err() == nil; j++ {
				if c == nil || (i+j)%2 == 0 {
					if c != nil {
						c.CloseIdleConnections()
					}
					c, _ = channel.New(cv, u)
				}
				if err := benchGet(wctx, c.HTTPClient(), u+"/v1/models"); err != nil {
					if wctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				reqs.Add(1)
			}
			c.CloseIdleConnections()
		})
	}
	wg.Wait()
	r := channelReports{Clients: n, Requests: reqs.Load(), Failed: failed.Load(), Reports: a.Reports() - start}
	r.FirstErr, _ = firstErr.Load().(string)
	r.PerHour = float64(r.Reports) * float64(time.Hour) / float64(window)
	return r
}

// agentMemory starts 'attestlog enclave' (demo source) as a child
// process with its connection limit at the largest of conns, opens conns
// kept-alive TLS connections to it (one request each) and reads its
// resident memory; then one connection more, which it must refuse.
func agentMemory(ctx context.Context, dir string, f *fleet.Fleet, upstream string, conns []int, say func(string, ...any)) ([]channelMemory, string, error) {
	limit := 0
	for _, n := range conns {
		limit = max(limit, n)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(limit)+256 {
		return nil, "", fmt.Errorf("%d connections need %d open files in this process and in the agent; the limit is %d (raise it: ulimit -n %d)", limit, limit+256, rl.Cur, limit+512)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	m := make([]byte, 48)
	copy(m, "attestlog bench channel: memory")
	cfg := fmt.Sprintf("listen: %q\nupstream: %q\nsource: demo\ndemo:\n  measurement: %s\n  root_out: %q\nmax_connections: %d\n",
		addr, upstream, hex.EncodeToString(m), filepath.Join(dir, "memory-root.pem"), limit)
	cfgPath := filepath.Join(dir, "enclave.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	cctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(cctx, exe, "enclave", "--config", cfgPath)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, "", err
	}
	defer func() { cancel(); cmd.Wait() }() // the agent stops on SIGINT
	base := "https://" + addr
	pc := plainTLSClient()
	for i := 0; ; i++ {
		if benchGet(ctx, pc, base+evidence.DocumentPath) == nil {
			break
		}
		if i > 100 {
			return nil, "", errors.New("the agent did not start within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pc.CloseIdleConnections()
	rss := func() (int64, error) {
		kb, err := vmRSS(cmd.Process.Pid)
		return kb << 10, err
	}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	// A warm-up: the agent's first connections and requests (its pools,
	// its transport to the service) are not the connections' cost.
	warm, err := openConns(ctx, addr, min(64, limit/2))
	if err != nil {
		return nil, "", err
	}
	for _, c := range warm {
		c.Close()
	}
	time.Sleep(500 * time.Millisecond)
	r0, err := rss()
	if err != nil {
		return nil, "", err
	}
	var out []channelMemory
	for _, n := range conns {
		more, err := openConns(ctx, addr, n-len(open))
		open = append(open, more...)
		if err != nil {
			return nil, "", fmt.Errorf("after %d connections: %w", len(open), err)
		}
		time.Sleep(500 * time.Millisecond)
		r, err := rss()
		if err != nil {
			return nil, "", err
		}
		cm := channelMemory{Connections: n, RSSDeltaMiB: float64(r-r0) / (1 << 20), PerConnKiB: float64(r-r0) / 1024 / float64(n)}
		out = append(out, cm)
		say("%6d open connections: agent RSS +%.1f MiB, %.1f KiB a connection", n, cm.RSSDeltaMiB, cm.PerConnKiB)
	}
	// One more than the limit.
	c, status, err := request(ctx, addr)
	if c != nil {
		c.Close()
	}
	if err != nil {
		return out, "", fmt.Errorf("the connection past the limit: %w", err)
	}
	say("connection %d: %s", limit+1, status)
	return out, status, nil
}

// openConns opens n TLS connections to addr, each after one request
// answered (so each is a kept-alive HTTP connection of the agent's).
func openConns(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	out := make([]net.Conn, n)
	var firstErr atomic.Value
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, status, err := request(ctx, addr)
			if err == nil && !strings.HasPrefix(status, "200") {
				err = fmt.Errorf("answered %s", status)
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				if c != nil {
					c.Close()
				}
				return
			}
			out[i] = c
		})
	}
	wg.Wait()
	var got []net.Conn
	for _, c := range out {
		if c != nil {
			got = append(got, c)
		}
	}
	if err, _ := firstErr.Load().(error); err != nil {
		for _, c := range got {
			c.Close()
		}
		return nil, err
	}
	return got, nil
}

// request opens a TLS connection to addr, sends GET /v1/models and reads
// the answer, leaving the connection open; it returns the status line
// (and, past a 200, the body's first line).
func request(ctx context.Context, addr string) (net.Conn, string, error) {
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		return c, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return c, "", err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	status := resp.Status
	if resp.StatusCode != http.StatusOK {
		status += " (Retry-After: " + resp.Header.Get("Retry-After") + ") " + strings.TrimSpace(string(b))
	}
	return c, status, nil
}
