package bhttp

import (
	"net/http"
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

// Fields returns h as field lines: names lowercased, sorted by name
// (Go's http.Header keeps no order), connection-specific fields left out.
func Fields(h http.Header) []Field {
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

// Header returns fs as an http.Header, connection-specific fields left
// out.
func Header(fs []Field) http.Header {
	h := http.Header{}
	for _, f := range fs {
		if hopByHop[f.Name] {
			continue
		}
		h.Add(f.Name, f.Value)
	}
	return h
}
