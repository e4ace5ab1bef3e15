// Package httpbodytest sends the request bodies a hostile or broken client
// sends — shorter than their Content-Length, or slower than the server's
// read timeout — and returns the status the server answered with.
package httpbodytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// Short sends a POST to path on addr whose body stops short of its
// Content-Length (the client half-closes the connection) and returns the
// response status.
func Short(t testing.TB, addr, path string) int {
	t.Helper()
	c := dial(t, addr)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0123456789", path, addr)
	c.(*net.TCPConn).CloseWrite()
	return status(t, c)
}

// Slow sends a POST to path on addr that declares a body and then sends
// only part of it, holding the connection open, so that the server's read
// timeout fires; it returns the response status.
func Slow(t testing.TB, addr, path string) int {
	t.Helper()
	c := dial(t, addr)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0123456789", path, addr)
	return status(t, c)
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func status(t testing.TB, c net.Conn) int {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
