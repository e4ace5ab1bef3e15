package yamlx

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type inner struct {
	VCPUs    int    `yaml:"vcpus"`
	VCPUType string `yaml:"vcpu_type"`
	Memory   uint64 `yaml:"memory"`
}

type doc struct {
	Version string        `yaml:"version"`
	Time    *time.Time    `yaml:"time"`
	Every   time.Duration `yaml:"every"`
	On      bool          `yaml:"on"`
	Recipe  struct {
		Measure *inner `yaml:"measure"`
	} `yaml:"recipe"`
	Env  map[string]string `yaml:"env"`
	List []inner           `yaml:"list"`
}

func TestErrorsInTheWritersWords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"version: 1\ncolour: red\n", "colour (line 2): unknown field; the fields here are"},
		{"recipe:\n  measure:\n    vcpu: 4\n", "recipe.measure.vcpu (line 3): unknown field; did you mean vcpus?"},
		{"recipe:\n  measure:\n    vcpus: four\n", `recipe.measure.vcpus (line 3): "four" is not a whole number`},
		{"time: yesterday\n", `time (line 1): "yesterday" is not a time in RFC 3339 form (e.g. 2026-11-26T12:00:00Z)`},
		{"every: often\n", `every (line 1): "often" is not a duration`},
		{"on: maybe\n", `on (line 1): "maybe" is not true or false`},
		{"list:\n  - {vcpus: 2}\n  - {memory: -1}\n", `list[1].memory (line 3): "-1" is not a whole number, 0 or more`},
		{"env: [a, b]\n", "env (line 1): expected a mapping, got a list"},
		{"recipe: 3\n", `recipe (line 1): expected a mapping of measure, got "3"`},
		{"version: 1\nversion: 2\n", "version (line 2): given twice"},
		{"version: [1\n", "line 1"},
	} {
		var d doc
		err := Unmarshal([]byte(tc.in), &d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Unmarshal(%q) = %v, want %q", tc.in, err, tc.want)
			continue
		}
		for _, bad := range []string{"yamlx.", "struct", "int64", "!!str", "time.Time", "2006-01-02T15:04:05Z07:00", "unmarshal"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("Unmarshal(%q) error %q has Go type talk %q", tc.in, err, bad)
			}
		}
	}
	var d doc
	if err := Unmarshal([]byte("version: 1.2\ntime: 2026-11-26T12:00:00Z\nevery: 5m\non: true\nrecipe: {measure: {vcpus: 4, vcpu_type: EPYC}}\nenv: {A: b}\nlist: [{vcpus: 1}]\n"), &d); err != nil {
		t.Fatal(err)
	}
	if d.Version != "1.2" || d.Time == nil || d.Every != 5*time.Minute || !d.On || d.Recipe.Measure.VCPUs != 4 || d.Env["A"] != "b" || len(d.List) != 1 {
		t.Errorf("decoded %+v", d)
	}
}

// FuzzUnmarshal: the YAML is the writer's; never a panic, and what the
// walk accepts decodes.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte("version: 1\nrecipe: {measure: {vcpus: 4}}\n"))
	f.Add([]byte("a: &x [1]\nlist: *x\n"))
	f.Add([]byte("time: 2026-11-26\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		_ = Unmarshal(b, &d)
	})
}

// TestAliasBomb: aliases that expand exponentially are refused quickly.
func TestAliasBomb(t *testing.T) {
	b := "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < 12; i++ {
		b += fmt.Sprintf("a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	// 10^12 values once expanded: the walk's budget (or yaml.v3's alias
	// limit) stops it, whatever the target.
	var m map[string]any
	if err := Unmarshal([]byte(b), &m); err == nil {
		t.Error("an alias bomb decoded")
	}
	var typed map[string][][][][][][][][][][][][]string
	if err := Unmarshal([]byte(b), &typed); err == nil || !strings.Contains(err.Error(), "aliases that expand to too many") {
		t.Errorf("an alias bomb into a deep type: %v", err)
	}
}
