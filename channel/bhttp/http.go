package bhttp

import (
	"sort"
	"strings"
)

// hopByHop are the fields that describe one connection, not the message
// (RFC 9110 §7.6.1; HTTP/2 §8.2.2 forbids them): they are neither
// encoded nor taken from a decoded message.
var hopByHop = map[string]bool{
	"connection": true, "proxy-connection": true, "keep-alive": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "host": true, "trailer": true,
}

// Fields returns h (an http.Header) as field lines: names lowercased,
// sorted by name (Go's http.Header keeps no order), connection-specific
// fields left out.
func Fields(h map[string][]string) []Field {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var fs []Field
	for _, k := range names {
		n := strings.ToLower(k)
		if hopByHop[n] {
			continue
		}
		for _, v := range h[k] {
			fs = append(fs, Field{Name: n, Value: strings.Trim(v, " \t")})
		}
	}
	return fs
}

// Header returns fs as an http.Header's map (canonical names),
// connection-specific fields left out.
func Header(fs []Field) map[string][]string {
	h := map[string][]string{}
	for _, f := range fs {
		if hopByHop[f.Name] {
			continue
		}
		k := canonical(f.Name)
		h[k] = append(h[k], f.Value)
	}
	return h
}

// canonical is net/textproto's canonical form of a field name.
func canonical(name string) string {
	b := []byte(name)
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}
