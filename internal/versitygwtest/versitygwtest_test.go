package versitygwtest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// TestVersitygw checks what Tessera's AWS driver and the log's readers
// rely on: a conditional put (If-None-Match: *) succeeds once and is
// refused with PreconditionFailed after; objects read anonymously; and
// anonymous writes are refused.
func TestVersitygw(t *testing.T) {
	s := Start(t, "probe")
	ctx := t.Context()
	c := s.Client()
	put := func(body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("tile/0/000"),
			Body: bytes.NewReader([]byte(body)), IfNoneMatch: aws.String("*")})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatal(err)
	}
	var ae smithy.APIError
	if err := put("second"); !errors.As(err, &ae) || ae.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("a second If-None-Match put = %v, want PreconditionFailed", err)
	}
	resp, err := http.Get(s.URL() + "/tile/0/000")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "first" {
		t.Errorf("anonymous GET = %d %q, want 200 \"first\"", resp.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/checkpoint", bytes.NewReader([]byte("forged")))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Error("an anonymous PUT was accepted")
	}
	if _, err := s.Get(ctx, "checkpoint"); err == nil {
		t.Error("the anonymous PUT wrote the object")
	}
	// Killed and restarted, it keeps what it stored.
	s.Kill()
	s.Restart()
	if got, err := s.Get(ctx, "tile/0/000"); err != nil || string(got) != "first" {
		t.Errorf("after a restart, Get = %q, %v", got, err)
	}
}
