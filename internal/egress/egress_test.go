package egress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700:4700::1111", true},
		{"::ffff:8.8.8.8", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},  // 6to4 of 8.8.8.8
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.0.0.1", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // AWS, GCP, Azure, OCI metadata
		{"::ffff:169.254.169.254", false},
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"2002:a9fe:a9fe::1", false},  // 6to4 of 169.254.169.254
		{"2002:7f00:1::1", false},     // 6to4 of 127.0.0.1
		{"fd00:ec2::254", false},      // AWS IPv6 metadata
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fc00::1", false},
		{"100.100.100.200", false}, // Alibaba Cloud metadata (shared space)
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"::127.0.0.1", false},
		{"::ffff:0:7f00:1", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"255.255.255.255", false},
		{"240.0.0.1", false},
		{"192.0.0.170", false},
		{"198.18.0.1", false},
		{"2001:db8::1", false},
		{"2001:0:4136:e378::1", false}, // Teredo
		{"fec0::1", false},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := Public(a); got != tc.want {
			t.Errorf("Public(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"8.8.8.8:443", true},
		{"[2606:4700:4700::1111]:443", true},
		{"127.0.0.1:8080", false},
		{"[::1]:8080", false},
		{"169.254.169.254:80", false},
		{"localhost:80", false}, // not an address: a dialer never passes a name
		{"8.8.8.8", false},
		{"", false},
	} {
		err := CheckAddress(tc.addr)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrAddressRefused)) {
			t.Errorf("CheckAddress(%q) = %v, want ok=%v (else ErrAddressRefused)", tc.addr, err, tc.ok)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"https://h.example/x", "https://h.example:443/y?z", true},
		{"http://h.example/x", "http://H.EXAMPLE:80/", true},
		{"http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b", true},
		{"http://h.example/", "https://h.example/", false},
		{"https://h.example/", "http://h.example:443/", false},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/", false},
		{"http://127.0.0.1:8080/", "http://localhost:8080/", false},
		{"http://h.example/", "http://h.example.attacker.example/", false},
		{"http://h.example/", "http://169.254.169.254/latest/meta-data/", false},
		{"http://[::1]:80/", "http://[::1]/", true},
	} {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if got := SameOrigin(a, b); got != tc.want {
			t.Errorf("SameOrigin(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestClient: through a real connection, a loopback server (by address
// and by a name resolving to it) is refused without AllowPrivate and
// never sees a request; with it, a redirect to another origin — another
// port, or the metadata address — is refused, one within the origin
// followed.
func TestClient(t *testing.T) {
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/other":
			http.Redirect(w, r, other.URL+"/", http.StatusMovedPermanently)
		case "/same":
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/final":
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	get := func(c *http.Client, u string) error {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	strict := NewClient()
	for _, u := range []string{srv.URL + "/final", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/final"} {
		if err := get(strict, u); !errors.Is(err, ErrAddressRefused) {
			t.Errorf("GET %s without AllowPrivate = %v, want ErrAddressRefused", u, err)
		}
	}
	open := NewClient(AllowPrivate())
	for path, want := range map[string]error{"/metadata": ErrRedirectRefused, "/other": ErrRedirectRefused, "/loop": ErrRedirectRefused, "/same": nil} {
		if err := get(open, srv.URL+path); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("GET %s = %v, want %v", path, err, want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the other origin got %d requests, want none", n)
	}
}

// FuzzCheckAddress: whatever a dialer could pass, an address is let
// through only if it parses and is none of what net/netip itself calls
// loopback, private, link-local, multicast or unspecified, in either
// form of an IPv4 address.
func FuzzCheckAddress(f *testing.F) {
	for _, s := range []string{"8.8.8.8:443", "[::1]:80", "169.254.169.254:80", "[::ffff:127.0.0.1]:1", "[64:ff9b::a9fe:a9fe]:80", "[fe80::1%lo]:1", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 256 {
			return
		}
		err := CheckAddress(s)
		if err != nil {
			if !errors.Is(err, ErrAddressRefused) {
				t.Fatalf("CheckAddress(%q) = %v, not ErrAddressRefused", s, err)
			}
			return
		}
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			t.Fatalf("CheckAddress(%q) passed an address that does not parse: %v", s, perr)
		}
		for _, a := range []netip.Addr{ap.Addr(), ap.Addr().Unmap()} {
			if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
				t.Fatalf("CheckAddress(%q) passed %s", s, a)
			}
		}
	})
}
