package loadtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// RekorPkg is Rekor v2's POSIX server, built from this module's
// dependency graph (go.mod's tool block) at the version go.mod requires.
const RekorPkg = "github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix"

// Rekor is a Rekor v2 server (POSIX or AWS) started on 127.0.0.1, the log an
// operator would otherwise put release digests in.
type Rekor struct {
	URL  string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// RekorAWSPkg is Rekor v2's AWS server (Tessera's AWS driver: an S3
// bucket and a MySQL database), at the version go.mod requires.
const RekorAWSPkg = "github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/aws"

// RekorS3 places Rekor v2's AWS server on an S3-compatible server and a
// MySQL database of its own.
type RekorS3 struct {
	Endpoint, Bucket, Region, AccessKeyID, SecretAccessKey, DSN string
}

// StartRekor starts bin (a build of RekorPkg) with its storage and
// signing key in dir, publishing a checkpoint every interval.
func StartRekor(ctx context.Context, bin, dir string, interval time.Duration) (*Rekor, error) {
	return startRekor(ctx, bin, dir, interval, []string{"--storage-dir=" + filepath.Join(dir, "rekor-tiles")}, nil)
}

// StartRekorS3 starts bin (a build of RekorAWSPkg) on s, its signing key
// in dir. The endpoint, credentials and checksum behaviour reach the AWS
// SDK through its environment variables (AWS_ENDPOINT_URL_S3,
// AWS_REQUEST_CHECKSUM_CALCULATION and AWS_RESPONSE_CHECKSUM_VALIDATION =
// when_required): Rekor's AWS server loads the SDK's default
// configuration and sets path-style addressing itself.
func StartRekorS3(ctx context.Context, bin, dir string, interval time.Duration, s RekorS3) (*Rekor, error) {
	env := append(os.Environ(),
		"AWS_ENDPOINT_URL_S3="+s.Endpoint, "AWS_REGION="+s.Region,
		"AWS_ACCESS_KEY_ID="+s.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+s.SecretAccessKey,
		"AWS_REQUEST_CHECKSUM_CALCULATION=when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION=when_required")
	return startRekor(ctx, bin, dir, interval, []string{"--aws-bucket=" + s.Bucket, "--aws-mysql-dsn=" + s.DSN}, env)
}

func startRekor(ctx context.Context, bin, dir string, interval time.Duration, storage, env []string) (*Rekor, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "rekor-key.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	r := &Rekor{URL: "http://127.0.0.1:" + strconv.Itoa(ports[0]), done: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"serve",
		"--http-address=127.0.0.1", "--http-port=" + strconv.Itoa(ports[0]),
		"--grpc-address=127.0.0.1", "--grpc-port=" + strconv.Itoa(ports[1]),
		"--http-metrics-port=" + strconv.Itoa(ports[2]),
		"--hostname=bench.attestlog/rekor",
		"--signer-filepath=" + keyPath, "--checkpoint-interval=" + interval.String(), "--log-level=warn"}, storage...)...)
	r.cmd.Env = env
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(r.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("rekor-server exited: %s", r.out.String())
		case <-ctx.Done():
			r.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Close()
			return nil, fmt.Errorf("rekor-server did not answer /healthz within a minute: %s", r.out.String())
		}
	}
}

// PID is the server's process ID (for its CPU time).
func (r *Rekor) PID() int { return r.cmd.Process.Pid }

// Close stops the server.
func (r *Rekor) Close() {
	r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// RekorRequests makes, for each entry, the hashedrekord v0.0.2 request
// that logs its SHA-512 digest with an Ed25519ph signature (the only
// kind of entry Rekor v2 takes besides DSSE, which its v2 refuses for
// keys), signed beforehand as the log's own entries are.
func RekorRequests(entries [][]byte) ([][]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(entries))
	for i, e := range entries {
		d := sha512.Sum512(e)
		sig, err := priv.Sign(nil, d[:], &ed25519.Options{Hash: crypto.SHA512})
		if err != nil {
			return nil, err
		}
		out[i], err = json.Marshal(map[string]any{"hashedRekordRequestV002": map[string]any{
			"digest": base64.StdEncoding.EncodeToString(d[:]),
			"signature": map[string]any{
				"content":  base64.StdEncoding.EncodeToString(sig),
				"verifier": map[string]any{"publicKey": map[string]any{"rawBytes": base64.StdEncoding.EncodeToString(spki)}, "keyDetails": "PKIX_ED25519_PH"},
			},
		}})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Add posts one request and checks that Rekor answered 201 with the
// entry's inclusion proof (Rekor v2 answers once a checkpoint covers it).
func (r *Rekor) Add(ctx context.Context, hc *http.Client, req []byte) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+"/api/v2/log/entries", bytes.NewReader(req))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("rekor: %d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var tle struct {
		LogIndex       string `json:"logIndex"`
		InclusionProof *struct {
			Hashes     []string `json:"hashes"`
			Checkpoint *struct {
				Envelope string `json:"envelope"`
			} `json:"checkpoint"`
		} `json:"inclusionProof"`
	}
	if err := json.Unmarshal(b, &tle); err != nil {
		return fmt.Errorf("rekor: %v", err)
	}
	if tle.InclusionProof == nil || tle.InclusionProof.Checkpoint == nil || tle.InclusionProof.Checkpoint.Envelope == "" {
		return errors.New("rekor: the answer carries no inclusion proof")
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
