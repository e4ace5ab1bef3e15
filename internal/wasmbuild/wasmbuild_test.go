package wasmbuild

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/attestlog/attestlog/internal/testenv"
)

// TestStub replaces a method's body and drops only the imports that the
// old body alone used; a function that is not there, or is there twice,
// is an error.
func TestStub(t *testing.T) {
	src := `package trust

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

type Getter struct{}

// Get fetches.
func (g *Getter) Get(ctx context.Context, url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	return io.ReadAll(resp.Body)
}

func other() error { return fmt.Errorf("kept") }
`
	want := `package trust

import (
	"context"
	"fmt"
)

type Getter struct{}

// Get fetches.
func (g *Getter) Get(ctx context.Context, url string) ([]byte, error) {
	return nil, fmt.Errorf("offline: %s", url)
}

func other() error { return fmt.Errorf("kept") }
`
	got, err := stub([]byte(src), "(*Getter).Get", `return nil, fmt.Errorf("offline: %s", url)`)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("stub =\n%s\nwant\n%s", got, want)
	}
	for _, fn := range []string{"(Getter).Get", "(*Getter).Put", "Get"} {
		if _, err := stub([]byte(src), fn, "return nil, nil"); err == nil || !strings.Contains(err.Error(), "found 0") {
			t.Errorf("stub of %s: %v, want it not found", fn, err)
		}
	}
	if _, err := stub([]byte(src), "other", "return nil\n}}"); err == nil {
		t.Error("a stub that does not parse was applied")
	}
}

// TestModuleLinksNoNetwork: the client makes no request (the JavaScript
// around it fetches), so net/http and crypto/tls, a fifth of the module,
// stay out of it — and the WebCrypto hooks are in.
func TestModuleLinksNoNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("copies modules")
	}
	testenv.LookPath(t, "go")
	pkgs, err := Packages(context.Background(), "../..")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pkgs, ModulePath+"/internal/webcrypto") || !slices.Contains(pkgs, ModulePath+"/policy/verify") {
		t.Fatalf("the module does not link policy/verify and internal/webcrypto: %v", pkgs)
	}
	for _, p := range []string{"net/http", "crypto/tls", "net/http/httptrace", "github.com/sigstore/sigstore-go/pkg/verify"} {
		if slices.Contains(pkgs, p) {
			t.Errorf("the WebAssembly client links %s", p)
		}
	}
}

// TestReplaceAll: an edit applies only when its text is found exactly as
// often as it says, so an upgrade that changes the file fails the build.
func TestReplaceAll(t *testing.T) {
	src := "import \"net/http\"\nvar a = http.X(1)\nvar b = http.X(2)\n"
	got, err := replaceAll(src, []edit{{from: "\"net/http\"", to: "\"net/textproto\"", count: 1}, {from: "http.X(", to: "textproto.Y(", count: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "import \"net/textproto\"\nvar a = textproto.Y(1)\nvar b = textproto.Y(2)\n"; got != want {
		t.Errorf("replaceAll =\n%s\nwant\n%s", got, want)
	}
	for _, e := range []edit{{from: "http.X(", to: "z", count: 1}, {from: "http.X(", to: "z", count: 3}, {from: "absent", to: "z", count: 0}} {
		if _, err := replaceAll(src, []edit{e}); err == nil {
			t.Errorf("edit %+v applied; want an error", e)
		}
	}
}
