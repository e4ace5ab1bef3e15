package check

import (
	"errors"
	"testing"
)

func TestList(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    List
		want bool
	}{
		{"empty", nil, false},
		{"all pass", List{Pass("a", "fine"), Pass("b", "fine")}, true},
		{"one fails", List{Pass("a", "fine"), From("b", errors.New("broken"), "")}, false},
	} {
		if got := tc.l.OK(); got != tc.want {
			t.Errorf("%s: OK() = %v, want %v", tc.name, got, tc.want)
		}
	}
	l := List{Pass("a", "fine"), Fail("b", "bad %d", 1), Pass("c", "ok")}
	if f := l.Failed(); len(f) != 1 || f[0].Name != "b" || f[0].Reason != "bad 1" {
		t.Errorf("Failed() = %+v, want only b with reason %q", f, "bad 1")
	}
	if c, ok := l.Find("c"); !ok || !c.OK {
		t.Errorf("Find(c) = %+v, %v", c, ok)
	}
	if got, want := l.String(), "✓ a: fine\n✗ b: bad 1\n✓ c: ok\n"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
