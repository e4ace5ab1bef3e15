// Package egress makes the HTTP clients with which a service fetches from
// an address that someone else chose: the deployments an auditor watches.
// Such a party must not be able to turn the service against what only the
// service can reach — its loopback, its private network, its cloud's
// metadata endpoint (169.254.169.254, fd00:ec2::254) — and have it publish
// the answer. A client from NewClient
//
//   - connects only to public addresses: the check is made when the
//     connection is dialled, on the address the name resolved to, for
//     every connection, so a DNS name that resolves to a public address
//     when checked and to a private one when used (rebinding) gains
//     nothing (AllowPrivate lifts it);
//   - follows a redirect only within the origin of the first request
//     (same scheme, host and port), at most 10;
//   - ignores proxy settings (HTTP_PROXY and the like): a proxy would
//     make the connection for it, past the check.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrAddressRefused: a connection was not made, because its address
	// is not public (loopback, private, link-local, …).
	ErrAddressRefused = errors.New("address refused")
	// ErrRedirectRefused: a redirect was not followed, because it leaves
	// the origin of the first request (or is one too many).
	ErrRedirectRefused = errors.New("redirect refused")
)

// MaxRedirects is how many redirects (within the origin) a request may
// follow.
const MaxRedirects = 10

// DefaultTimeout bounds a whole request, body included, unless
// WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

type options struct {
	allowPrivate bool
	timeout      time.Duration
}

// Option configures NewClient.
type Option func(*options)

// AllowPrivate lets the client connect to any address, non-public ones
// included. Redirects stay within the origin.
func AllowPrivate() Option { return func(o *options) { o.allowPrivate = true } }

// WithTimeout bounds a whole request, body included (DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// NewClient returns a client that connects only to public addresses
// (unless AllowPrivate) and follows redirects only within the origin.
// Its errors wrap ErrAddressRefused and ErrRedirectRefused.
func NewClient(opts ...Option) *http.Client {
	o := options{timeout: DefaultTimeout}
	for _, f := range opts {
		f(&o)
	}
	d := NewDialer(opts...)
	return &http.Client{
		Timeout: o.timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            d.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           4,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    10 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRedirectRefused, MaxRedirects)
			}
			if !SameOrigin(via[0].URL, req.URL) {
				return fmt.Errorf("%w: from %s to another origin, %s://%s", ErrRedirectRefused, origin(via[0].URL), req.URL.Scheme, req.URL.Host)
			}
			return nil
		},
	}
}

// NewDialer returns the dialer of NewClient's clients, for connections
// made without net/http (the attested channel's): it connects only to
// public addresses, unless AllowPrivate. Its errors wrap
// ErrAddressRefused.
func NewDialer(opts ...Option) *net.Dialer {
	o := options{timeout: DefaultTimeout}
	for _, f := range opts {
		f(&o)
	}
	d := &net.Dialer{Timeout: o.timeout, KeepAlive: 30 * time.Second}
	if !o.allowPrivate {
		// Control runs after resolution, on the address being connected
		// to, for each address tried.
		d.Control = func(network, address string, _ syscall.RawConn) error { return CheckAddress(address) }
	}
	return d
}

// CheckAddress returns nil if address, an IP address and port as a dialer
// connects to ("192.0.2.1:443", "[2001:db8::1]:443"), is public, and an
// error wrapping ErrAddressRefused otherwise (one that does not parse
// included).
func CheckAddress(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address and port", ErrAddressRefused, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address (allow private addresses to reach it)", ErrAddressRefused, ap.Addr())
	}
	return nil
}

// notPublic are the ranges beyond net/netip's predicates that no public
// server has: this network, shared (carrier-grade NAT, where some clouds
// put their metadata service: 100.100.100.200), IETF protocol
// assignments, documentation and benchmarking, reserved and broadcast;
// IPv4-compatible, IPv4-translated, discard-only, Teredo, documentation,
// local-use NAT64 and deprecated site-local IPv6.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("fec0::/10"),
}

// Prefixes whose addresses carry an IPv4 address, which is what they
// reach: NAT64 (the last 32 bits) and 6to4 (bits 16–48).
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// Public reports whether a is a public unicast address: not loopback,
// private (RFC 1918, fc00::/7), link-local (169.254.0.0/16, where cloud
// metadata services answer, fe80::/10), multicast, unspecified, or in one
// of the special-purpose ranges above; an IPv4 address inside an IPv6
// one (mapped, NAT64, 6to4) is judged as itself.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return Public(netip.AddrFrom4([4]byte(b[12:16])))
	case sixTo4.Contains(a):
		return Public(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}

// SameOrigin reports whether a and b have the same origin: scheme, host
// (case-insensitively) and port, a missing port being the scheme's own.
func SameOrigin(a, b *url.URL) bool {
	return origin(a) == origin(b)
}

// origin is scheme://host:port, lower case, with the default port filled
// in.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
