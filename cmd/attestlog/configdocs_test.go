package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/agent"
	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/witness"
)

// TestConfigDocs holds docs/configuration.md to the configuration
// structs: every YAML key of log.yaml, enclave.yaml, witness.yaml and
// auditor.yaml — read from the structs' yaml tags, nested ones included —
// is named in its file's section, so a new option cannot ship
// undocumented.
func TestConfigDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range []struct {
		heading string
		cfg     any
	}{
		{"## log.yaml", logserver.Config{}},
		{"## enclave.yaml", agent.Config{}},
		{"## witness.yaml", witness.Config{}},
		{"## auditor.yaml", auditor.Config{}},
	} {
		i := strings.Index(doc, c.heading)
		if i < 0 {
			t.Errorf("docs/configuration.md has no section %q", c.heading)
			continue
		}
		sec := doc[i+len(c.heading):]
		if j := strings.Index(sec, "\n## "); j >= 0 {
			sec = sec[:j]
		}
		keys := yamlKeys(reflect.TypeOf(c.cfg), "")
		if len(keys) < 5 {
			t.Fatalf("%s: only %d keys found by reflection", c.heading, len(keys))
		}
		for _, k := range keys {
			if hasChildren(keys, k) {
				continue // documented through its keys
			}
			leaf := k[strings.LastIndexAny(k, ".]")+1:]
			if !strings.Contains(sec, "`"+leaf+"`") && !strings.Contains(sec, "."+leaf+"`") &&
				!strings.Contains(sec, "`"+k+"`") && !strings.Contains(sec, leaf+":") {
				t.Errorf("%s: key %s is not documented in docs/configuration.md", c.heading, k)
			}
		}
	}
}

// yamlKeys lists the YAML keys of a struct type as paths (a.b, list[].c).
func yamlKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		path := prefix + name
		out = append(out, path)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}):
			out = append(out, yamlKeys(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, yamlKeys(ft.Elem(), path+"[].")...)
		}
	}
	return out
}

func hasChildren(keys []string, k string) bool {
	for _, o := range keys {
		if strings.HasPrefix(o, k+".") || strings.HasPrefix(o, k+"[].") {
			return true
		}
	}
	return false
}
