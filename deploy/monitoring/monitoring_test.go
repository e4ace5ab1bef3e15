// Package monitoring holds the operator kit beside the binary: Prometheus
// alerting rules (rules.yml, with promtool unit tests in rules_test.yml)
// and a Grafana dashboard (dashboard.json). Its test keeps both honest.
package monitoring

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"github.com/attestlog/attestlog/internal/testenv"
)

// TestPromtool runs Prometheus's own checker and the rules' unit tests.
func TestPromtool(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestMetricsExist checks that every metric the rules and the dashboard
// query is one the code registers (found in its Go source), one of
// client_golang's Go and process collectors (which the services
// register), or Prometheus's own up; and that the rules cover what an
// operator must be woken for.
func TestMetricsExist(t *testing.T) {
	known := codeMetrics(t)
	for _, want := range []string{"attestlog_log_add_total", "attestlog_log_quorum_lag_entries", "attestlog_witness_requests_total", "attestlog_auditor_alerts_open", "attestlog_enclave_staple_age_seconds"} {
		if !known[want] {
			t.Fatalf("the source scan found no %s: it is broken", want)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		known[mf.GetName()] = true
	}
	known["up"] = true

	exprs := map[string]string{} // expression → where
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct{ Alert, Expr string }
		}
	}
	b, err := os.ReadFile("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs[r.Expr] = "rules.yml alert " + r.Alert
			alerts[r.Alert] = r.Expr
		}
	}
	// What the issue asks the rules to cover, each by the metric that
	// says it.
	for alert, metric := range map[string]string{
		"AttestlogLogQuorumLag":         "attestlog_log_quorum_lag_entries",
		"AttestlogLogCheckpointStale":   "attestlog_log_checkpoint_age_seconds",
		"AttestlogLogUnreadableEntries": "attestlog_log_unreadable_entries_total",
		"AttestlogLogPushback":          "attestlog_log_pushback_total",
		"AttestlogLogStorageErrors":     "attestlog_log_storage_errors_total",
	} {
		if !strings.Contains(alerts[alert], metric) {
			t.Errorf("rules.yml: alert %s = %q, want one on %s", alert, alerts[alert], metric)
		}
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if b, err = os.ReadFile("dashboard.json"); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs[tg.Expr] = "dashboard.json panel " + strconv.Quote(p.Title)
		}
	}
	if len(exprs) < 20 {
		t.Fatalf("found %d expressions in rules.yml and dashboard.json", len(exprs))
	}
	for e, where := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("%s: %q names no metric", where, e)
		}
		for _, n := range names {
			if !known[n] && !known[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] {
				t.Errorf("%s: metric %s is registered nowhere in the code", where, n)
			}
		}
	}
}

var (
	quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	ident  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	metric = regexp.MustCompile(`^(attestlog|process|go)_[a-z0-9_]+$|^up$`)
)

// metricNames are the metric names of a PromQL expression: its
// identifiers of our metrics' forms, outside strings.
func metricNames(expr string) []string {
	var out []string
	for _, id := range ident.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if metric.MatchString(id) {
			out = append(out, id)
		}
	}
	return out
}

// codeMetrics scans the module's non-test Go source for metric names:
// string literals of the form attestlog_…, and prometheus *Opts literals
// whose Namespace, Subsystem and Name are constants.
func codeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	root := filepath.Join("..", "..")
	known := map[string]bool{}
	full := regexp.MustCompile(`^attestlog_[a-z0-9_]+$`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "testdata", ".git", "tools":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		consts := map[string]string{}
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							consts[name.Name] = s
						}
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && full.MatchString(s) {
					known[s] = true
				}
			case *ast.CompositeLit:
				parts := map[string]string{}
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					k, ok := kv.Key.(*ast.Ident)
					if !ok {
						continue
					}
					if s, ok := stringLit(kv.Value); ok {
						parts[k.Name] = s
					} else if id, ok := kv.Value.(*ast.Ident); ok {
						parts[k.Name] = consts[id.Name]
					}
				}
				if parts["Name"] != "" && (parts["Namespace"] != "" || parts["Subsystem"] != "") {
					var ps []string
					for _, p := range []string{parts["Namespace"], parts["Subsystem"], parts["Name"]} {
						if p != "" {
							ps = append(ps, p)
						}
					}
					known[strings.Join(ps, "_")] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return known
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}
