// Package yamlx decodes the YAML files people write for attestlog (release
// files, log.yaml, witness.yaml, auditor.yaml) strictly, with errors in the
// writer's words: each names the YAML path and line of the value it is
// about and says what was expected — `recipe.measure.vcpu (line 22):
// unknown field; did you mean vcpus?`, `recipe.measure.vcpus (line 21):
// "four" is not a whole number` — and never a Go type name.
//
// It walks the document against the target type before decoding, so that
// every problem is found with its position; only then does gopkg.in/yaml.v3
// decode (and types with their own UnmarshalYAML have their message
// prefixed with the path and line).
package yamlx

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxErrors bounds how many problems one error lists.
const maxErrors = 10

// Unmarshal decodes data into v (a pointer to a struct) strictly: unknown
// fields, values of the wrong kind and malformed times and durations are
// errors naming their path and line. An empty document leaves v as is.
func Unmarshal(data []byte, v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return errors.New("yamlx: Unmarshal needs a pointer")
	}
	w := &walker{budget: maxNodes}
	w.walk(root, rv.Type().Elem(), "")
	if w.budget < 0 {
		return errors.New("the document has too many values, or aliases that expand to too many")
	}
	if len(w.errs) > 0 {
		if w.more > 0 {
			w.errs = append(w.errs, fmt.Sprintf("(and %d more)", w.more))
		}
		return errors.New(strings.Join(w.errs, "\n"))
	}
	if err := root.Decode(v); err != nil {
		// Not expected after the walk; still say it without type names.
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

type walker struct {
	errs []string
	more int
	// budget bounds the nodes visited, aliases expanded: an alias bomb
	// ("a: &a [x, x], b: &b [*a, *a], …") must not expand exponentially.
	budget int
}

// maxNodes is the budget of a walk.
const maxNodes = 200000

func (w *walker) errf(n *yaml.Node, path, format string, args ...any) {
	if len(w.errs) >= maxErrors {
		w.more++
		return
	}
	where := path
	if where == "" {
		where = "the document"
	}
	w.errs = append(w.errs, fmt.Sprintf("%s (line %d): %s", where, n.Line, fmt.Sprintf(format, args...)))
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	timeType        = reflect.TypeFor[time.Time]()
	durationType    = reflect.TypeFor[time.Duration]()
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if w.budget--; w.budget < 0 {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null: the zero value
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// Its own rules: decode it alone to place its error.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.errf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	switch t {
	case timeType:
		if n.Kind != yaml.ScalarNode {
			w.errf(n, path, "expected a time (e.g. 2026-11-26T12:00:00Z), got %s", kindName(n))
			return
		}
		if _, err := time.Parse(time.RFC3339, n.Value); err != nil {
			if _, err2 := time.Parse("2006-01-02", n.Value); err2 != nil {
				w.errf(n, path, "%s is not a time in RFC 3339 form (e.g. 2026-11-26T12:00:00Z)", quote(n.Value))
			}
		}
		return
	case durationType:
		if n.Kind != yaml.ScalarNode {
			w.errf(n, path, "expected a duration (e.g. 10s, 5m, 1h30m), got %s", kindName(n))
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			if _, ierr := strconv.ParseInt(n.Value, 10, 64); ierr != nil {
				w.errf(n, path, "%s is not a duration (e.g. 10s, 5m, 1h30m)", quote(n.Value))
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.errf(n, path, "expected a mapping of %s, got %s", fieldList(t), kindName(n))
			return
		}
		fields := structFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				w.errf(k, join(path, k.Value), "given twice")
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				msg := "unknown field"
				if s := suggest(k.Value, fields); s != "" {
					msg += "; did you mean " + s + "?"
				} else {
					msg += "; the fields here are " + fieldList(t)
				}
				w.errf(k, join(path, k.Value), "%s", msg)
				continue
			}
			w.walk(val, ft, join(path, k.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errf(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				w.errf(k, path, "a key must be a plain value, got %s", kindName(k))
				continue
			}
			w.walk(n.Content[i+1], t.Elem(), join(path, k.Value))
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && n.Kind == yaml.ScalarNode {
			return // []byte from a string
		}
		if n.Kind != yaml.SequenceNode {
			w.errf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Interface:
		// Anything goes.
	default:
		w.scalar(n, t, path)
	}
}

func (w *walker) scalar(n *yaml.Node, t reflect.Type, path string) {
	want := map[reflect.Kind]string{
		reflect.Bool: "true or false", reflect.String: "text",
		reflect.Float32: "a number", reflect.Float64: "a number",
	}[t.Kind()]
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		want = "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		want = "a whole number, 0 or more"
	}
	if want == "" {
		want = "a value"
	}
	if n.Kind != yaml.ScalarNode {
		w.errf(n, path, "expected %s, got %s", want, kindName(n))
		return
	}
	if t.Kind() == reflect.String {
		return // any scalar is text
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		msg := fmt.Sprintf("%s is not %s", quote(n.Value), want)
		if strings.Contains(err.Error(), "overflows") {
			msg = fmt.Sprintf("%s is out of range", quote(n.Value))
		}
		w.errf(n, path, "%s", msg)
	}
}

// structFields maps each YAML key of struct t (inline structs flattened)
// to its field type.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func fieldList(t reflect.Type) string {
	var names []string
	for k := range structFields(t) {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 12 {
		names = append(names[:12], "…")
	}
	return strings.Join(names, ", ")
}

// suggest returns the known key closest to k, if close enough to be a
// likely typo.
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	lk := strings.ToLower(k)
	for f := range fields {
		d := distance(lk, f)
		if strings.HasPrefix(f, lk) || strings.HasPrefix(lk, f) {
			d = min(d, 2) // a truncation: likely, but a close typo first
		}
		if d < bestD || (d == bestD && f < best) {
			best, bestD = f, d
		}
	}
	if bestD > 2 || (bestD == 2 && len(k) < 4) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance of a and b (short strings).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return quote(n.Value)
	}
	return "something else"
}

// quote quotes a value for a message, at most 60 bytes of it.
func quote(s string) string {
	if len(s) > 60 {
		return strconv.Quote(s[:60]) + "…"
	}
	return strconv.Quote(s)
}
