package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/auditor/misbehaviour"
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/web"
)

func init() {
	register("audit", "follow logs, rebuild releases, watch deployments and raise alerts", runAudit)
	register("alerts", "list the alerts in an auditor database", runAlerts)
	register("verify-misbehaviour", "check a log misbehaviour evidence file written by the auditor", runVerifyMisbehaviour)
	allowsArgs["attestlog verify-misbehaviour"] = true
}

// auditStdout is where audit commands print; tests may replace it.
var auditStdout = os.Stdout

func runAudit(args []string) error {
	fs := newFlagSet("audit", "--config auditor.yaml [--once]")
	cfgPath := fs.String("config", "auditor.yaml", "auditor configuration `FILE` (YAML)")
	once := fs.Bool("once", false, "make one pass (follow, rebuild, poll deployments, deliver webhooks) and exit: status 1 when any alert is open, 0 otherwise")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := auditor.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	logger := newLogger().With("component", "auditor")
	a, err := auditor.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()

	if *once {
		runErr := a.RunOnce(ctx)
		n, err := a.OpenAlerts(context.Background())
		if err != nil {
			return err
		}
		st, _ := a.Status(context.Background())
		if st != nil {
			for _, l := range st.Logs {
				fmt.Fprintf(auditStdout, "log %s: tree size %d, %d entries verified\n", l.Origin, l.TreeSize, l.Verified)
			}
			fmt.Fprintf(auditStdout, "rebuilds: %s\n", countSentence(st.Rebuilds, "none"))
			for _, d := range st.Deployments {
				m := d.Measurement
				if m == "" {
					m = "no measurement read"
				}
				fmt.Fprintf(auditStdout, "deployment %s: %s (%s)\n", d.Name, d.Verdict, m)
			}
			if len(st.OpenAlerts) > 0 {
				fmt.Fprintf(auditStdout, "open alerts by kind: %s\n", countSentence(st.OpenAlerts, "none"))
			}
		}
		fmt.Fprintf(auditStdout, "%s open\n", plural(int(n), "alert", "alerts"))
		switch {
		case runErr != nil && n > 0:
			return &exitError{code: 1, err: fmt.Errorf("%d open alert(s); and: %w", n, runErr)}
		case runErr != nil:
			return &exitError{code: 1, err: runErr}
		case n > 0:
			return &exitError{code: 1, err: fmt.Errorf("%d open alert(s) (list them with 'attestlog alerts --db %s')", n, cfg.DB)}
		}
		return nil
	}

	errc := make(chan error, 1)
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
		}
		logger.Info("serving status and metrics", "addr", "http://"+ln.Addr().String())
		d, err := web.NewDashboard(a.DashboardSource())
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle(d.Prefix(), d.Handler())
		mux.Handle("GET /{$}", http.RedirectHandler(d.Prefix(), http.StatusFound))
		mux.Handle("/", a.Handler())
		go func() { errc <- httpserve.Serve(ctx, httpserve.NewServer(mux), ln) }()
	}
	runErr := a.Run(ctx)
	if cfg.Listen != "" {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

func runAlerts(args []string) error {
	fs := newFlagSet("alerts", "--db FILE [--json] [--open] | --db FILE --close ID --note TEXT")
	db := fs.String("db", "auditor.db", "auditor database `FILE`")
	asJSON := fs.Bool("json", false, "print the alerts as a JSON array, with their evidence")
	openOnly := fs.Bool("open", false, "only open alerts")
	closeID := fs.Int64("close", 0, "close (acknowledge) the open alert with this `ID`; its condition is not raised again, and 'audit --once' no longer counts it")
	note := fs.String("note", "", "with --close: why, e.g. who checked what (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *closeID != 0 || *note != "" {
		if *closeID <= 0 || strings.TrimSpace(*note) == "" {
			fmt.Fprintln(fs.Output(), "--close takes an alert ID (see 'attestlog alerts --open') and needs --note saying why")
			fs.Usage()
			return errUsage
		}
		if err := auditor.CloseAlert(context.Background(), *db, *closeID, *note); err != nil {
			return err
		}
		fmt.Fprintf(auditStdout, "closed alert %d\n", *closeID)
		return nil
	}
	al, err := auditor.ListAlerts(context.Background(), *db)
	if err != nil {
		return err
	}
	var out []auditor.Alert
	for _, a := range al {
		if !*openOnly || a.Open {
			out = append(out, a)
		}
	}
	if *asJSON {
		if out == nil {
			out = []auditor.Alert{}
		}
		enc := json.NewEncoder(auditStdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(auditStdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tKIND\tSUBJECT\tSTATE\tSUMMARY")
	for _, a := range out {
		state := "open"
		if !a.Open {
			state = "closed"
			if a.CloseNote != "" {
				state = fmt.Sprintf("closed %s (%s)", a.Closed, strings.ReplaceAll(a.CloseNote, "\n", " "))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Time.Format("2006-01-02T15:04:05Z"), a.Kind, a.Subject, state, strings.ReplaceAll(a.Summary, "\n", " "))
	}
	return tw.Flush()
}

func runVerifyMisbehaviour(args []string) error {
	fs := newFlagSet("verify-misbehaviour", "[--vkey VKEY] FILE")
	vkey := fs.String("vkey", "", "require the evidence to be about the log with this note verifier `KEY`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "want exactly one evidence FILE")
		fs.Usage()
		return errUsage
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	ev, err := misbehaviour.Parse(b)
	if err == nil {
		if *vkey != "" && ev.VKey != *vkey {
			err = fmt.Errorf("%w: the evidence is about the log with key %s, not %s", misbehaviour.ErrNotProven, ev.VKey, *vkey)
		}
	}
	var p *misbehaviour.Proven
	if err == nil {
		p, err = ev.Verify()
	}
	if err != nil {
		if errors.Is(err, misbehaviour.ErrNotProven) {
			return &exitError{code: 1, err: err}
		}
		return err
	}
	fmt.Fprintf(auditStdout, "misbehaviour proven: %s\nlog key: %s\n", p, ev.VKey)
	return nil
}

// countSentence writes counts by name as "3 reproduced, 1 failed" (largest
// first), or none when there are none.
func countSentence[N int | int64](m map[string]N, none string) string {
	type kv struct {
		k string
		n N
	}
	var kvs []kv
	for k, n := range m {
		if n > 0 {
			kvs = append(kvs, kv{k, n})
		}
	}
	if len(kvs) == 0 {
		return none
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].n > kvs[j].n || kvs[i].n == kvs[j].n && kvs[i].k < kvs[j].k })
	parts := make([]string, len(kvs))
	for i, x := range kvs {
		parts[i] = fmt.Sprintf("%d %s", x.n, x.k)
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
