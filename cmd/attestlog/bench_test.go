package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// 'bench append' against a real 'up': the log gets exactly the entries the
// run reports, and both baselines run on the same entries and print a ratio.
func TestBenchAppend(t *testing.T) {
	dir := t.TempDir()
	u := startUp(t, dir, "--auditor=false")
	before := treeSize(t, u.info.URL)
	out := runCmd(t, "bench", "append", "--log", u.info.URL, "--key", u.info.Operator.Key,
		"--writers", "8", "--duration", "2s", "--entries", "400", "--baseline", "tessera,floor")
	line := regexp.MustCompile(`(?m)^(attestlog|tessera|floor) +(\d+) entries in .* \((\d+) errors`)
	got := map[string]int{}
	for _, m := range line.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		if m[3] != "0" {
			t.Errorf("%s run had %s errors:\n%s", m[1], m[3], out)
		}
		got[m[1]] = n
	}
	for _, name := range []string{"attestlog", "tessera", "floor"} {
		if got[name] <= 0 || got[name] > 400 {
			t.Errorf("%s run sent %d entries, want 1..400:\n%s", name, got[name], out)
		}
		if !strings.Contains(out, "ratio      attestlog/"+name) && name != "attestlog" {
			t.Errorf("no ratio to %s:\n%s", name, out)
		}
	}
	// Every acknowledged entry is in the log (the bench waited for the
	// index to reach the last one, so the tree covers it).
	waitFor(t, func() bool { return treeSize(t, u.info.URL) >= before+uint64(got["attestlog"]) }, "the tree to cover the bench's entries")

	if _, stderr, err := tryCmd(t, "bench", "append", "--log", u.info.URL, "--key", u.info.Operator.Key, "--baseline", "nginx"); err == nil || !strings.Contains(stderr, "the baselines are tessera and floor") {
		t.Errorf("--baseline nginx: err %v, stderr %q", err, stderr)
	}
}

func treeSize(t *testing.T, url string) uint64 {
	t.Helper()
	cp := httpGet(t, url+"/checkpoint")
	lines := strings.SplitN(cp, "\n", 3)
	if len(lines) < 3 {
		t.Fatalf("bad checkpoint %q", cp)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("bad checkpoint size in %q", cp)
	}
	return size
}
