package witness

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/witness/driver"
	"github.com/attestlog/attestlog/witness/protocol"
)

// Peer binaries are built once per test binary, into peerDir (removed by
// TestMain).
var (
	peerDir   string
	peerOnce  sync.Once
	peerBins  = map[string]string{}
	peerErrs  = map[string]error{}
	peerMutex sync.Mutex
)

func peerBinary(t *testing.T, pkg string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "the go command (to build "+pkg+")", err)
	}
	peerOnce.Do(func() {
		peerDir, _ = os.MkdirTemp("", "attestlog-witness-peers-")
	})
	peerMutex.Lock()
	defer peerMutex.Unlock()
	if _, ok := peerBins[pkg]; !ok && peerErrs[pkg] == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		bin, err := driver.BuildPeer(ctx, peerDir, pkg)
		peerBins[pkg], peerErrs[pkg] = bin, err
	}
	if err := peerErrs[pkg]; err != nil {
		testenv.Missing(t, pkg, err)
	}
	return peerBins[pkg]
}

// pubSigner is a crypto.Signer that only has a public key, so that torchwood
// can build its own cosignature/v1 verifier from a vkey.
type pubSigner struct{ pub ed25519.PublicKey }

func (p pubSigner) Public() crypto.PublicKey { return p.pub }
func (p pubSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("verify only")
}

// torchwoodVerifier returns torchwood's cosignature/v1 verifier for vkey: an
// implementation independent of transparency-dev/formats, which our
// witness signs with.
func torchwoodVerifier(t testing.TB, vkey string) note.Verifier {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != 33 || key[0] != 0x04 {
		t.Fatalf("vkey %q is not a cosignature/v1 Ed25519 key", vkey)
	}
	s, err := torchwood.NewCosignatureSigner(parts[0], pubSigner{ed25519.PublicKey(key[1:])})
	if err != nil {
		t.Fatal(err)
	}
	v := s.Verifier()
	if v.String() != vkey {
		t.Fatalf("torchwood derives vkey %q, want %q", v.String(), vkey)
	}
	return v
}

// TestInteropTorchwoodVerifies checks our cosignatures with torchwood's
// verifier, and litewitness's own vkey derivation against ours.
func TestInteropTorchwoodVerifies(t *testing.T) {
	tw := newTestWitness(t)
	l := newTestLog(t, tw, "example.com/torchwood")
	l.Append(9)
	cosig, err := tw.client.AddCheckpoint(context.Background(), l.Request(0, 9))
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(append(l.Checkpoint(9), cosig...), note.VerifierList(torchwoodVerifier(t, tw.VerifierKey())))
	if err != nil || len(n.Sigs) != 1 {
		t.Fatalf("torchwood does not verify our cosignature: %v", err)
	}
	ts, err := torchwood.CosignatureTimestamp(n.Sigs[0])
	if err != nil || ts <= 0 || ts > time.Now().Unix()+1 {
		t.Fatalf("torchwood.CosignatureTimestamp = %d, %v", ts, err)
	}
}

// TestInteropTessera runs a Tessera POSIX log whose witness policy is a
// `group ... all` of our witness, litewitness (key in an ssh-agent) and
// omniwitness: every published checkpoint carries all three cosignatures,
// each checked by a verifier other than the one its witness signs with.
// The log is then restarted, so that Tessera's witness client starts again
// from old size 0 and takes its 409 retry path with every witness.
func TestInteropTessera(t *testing.T) {
	lwBin := peerBinary(t, driver.LitewitnessPkg)
	owBin := peerBinary(t, driver.OmniwitnessPkg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const origin = "example.com/interop-log"
	logSKey, logVKey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(logSKey)
	if err != nil {
		t.Fatal(err)
	}
	logVerifier, _ := note.NewVerifier(logVKey)

	ours := newTestWitness(t)
	if err := ours.AddLog(ctx, origin, logVKey); err != nil {
		t.Fatal(err)
	}
	peerOut := &testenv.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("peer output:\n%s\nour witness log:\n%s", peerOut.String(), ours.logBuf.String())
		}
	})
	lwDir, err := os.MkdirTemp("", "lw") // short: the agent socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(lwDir) })
	lite, err := driver.StartLitewitness(ctx, lwBin, lwDir, "litewitness.example/w", peerOut)
	if err != nil {
		testenv.Missing(t, "litewitness with an ssh-agent", err)
	}
	t.Cleanup(lite.Close)
	if err := lite.AddLog(ctx, origin, logVKey); err != nil {
		t.Fatal(err)
	}
	omniDir := t.TempDir()
	omniLogs := map[string]string{origin: logVKey}
	omni, err := driver.StartOmniwitness(ctx, owBin, omniDir, "omniwitness.example/w", "", omniLogs, peerOut)
	if err != nil {
		testenv.Missing(t, "omniwitness", err)
	}
	t.Cleanup(func() { omni.Close() })

	policy := fmt.Sprintf(`# c2sp.org/tlog-policy
witness ours %s %s
witness lite %s %s
witness omni %s %s
group all-three all ours lite omni
quorum all-three
`, ours.VerifierKey(), ours.srv.URL, lite.VKey, lite.URL, omni.VKey, omni.URL)
	wg, err := tessera.NewWitnessGroupFromPolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	verifiers := map[string]note.Verifier{
		// Each witness checked by a verifier it does not sign with: ours
		// (formats/note) by torchwood, the peers by formats/note.
		"ours": torchwoodVerifier(t, ours.VerifierKey()),
		"lite": mustCosigV1Verifier(t, lite.VKey),
		"omni": mustCosigV1Verifier(t, omni.VKey),
	}

	storage, err := posix.New(ctx, posix.Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, storage, tessera.NewAppendOptions().
		WithCheckpointSigner(logSigner).
		WithCheckpointInterval(time.Second).
		WithBatching(16, 100*time.Millisecond).
		WithWitnesses(wg, &tessera.WitnessOptions{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := shutdown(sctx); err != nil {
			t.Errorf("tessera shutdown: %v", err)
		}
	}()
	awaiter := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 50*time.Millisecond)
	add := func(n int) tessera.IndexFuture {
		var last tessera.IndexFuture
		for i := range n {
			last = appender.Add(ctx, tessera.NewEntry(fmt.Appendf(nil, "entry %d %d", i, time.Now().UnixNano())))
		}
		return last
	}
	checkCosigned := func(cp []byte) {
		t.Helper()
		if _, err := note.Open(cp, note.VerifierList(logVerifier)); err != nil {
			t.Fatalf("log signature: %v", err)
		}
		for name, v := range verifiers {
			n, err := note.Open(cp, note.VerifierList(v))
			if err != nil || len(n.Sigs) != 1 {
				t.Errorf("published checkpoint lacks a valid cosignature from %s: %v", name, err)
			}
		}
		// Our monitor endpoint serves a checkpoint at least as large.
		got, err := (&protocol.Client{SubmissionPrefix: ours.srv.URL}).Checkpoint(ctx, origin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(got, note.VerifierList(logVerifier)); err != nil {
			t.Errorf("monitor checkpoint %q: %v", got, err)
		}
	}

	idx, cp, err := awaiter.Await(ctx, add(5))
	if err != nil {
		t.Fatalf("awaiting a witnessed checkpoint: %v", err)
	}
	t.Logf("entry %d published in checkpoint:\n%s", idx.Index, cp)
	checkCosigned(cp)

	// With omniwitness down the quorum fails, so nothing is published,
	// but ours and litewitness cosign the new checkpoint. When omniwitness
	// is back, Tessera guesses old = the published size for all three: ours
	// and litewitness answer 409 with the size they cosigned, and Tessera
	// retries from it.
	omni.Close()
	future := add(3)
	for {
		logs, err := ours.Logs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if logs[0].Size >= 8 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("our witness never cosigned size 8: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	omni, err = driver.StartOmniwitness(ctx, owBin, omniDir, "omniwitness.example/w", strings.TrimPrefix(omni.URL, "http://"), omniLogs, peerOut)
	if err != nil {
		t.Fatalf("restarting omniwitness: %v", err)
	}
	idx, cp, err = awaiter.Await(ctx, future)
	if err != nil {
		t.Fatalf("awaiting a witnessed checkpoint: %v", err)
	}
	t.Logf("entry %d published in checkpoint:\n%s", idx.Index, cp)
	checkCosigned(cp)
	if count409(ours) == 0 {
		t.Errorf("our witness never answered 409: Tessera's retry path was not exercised")
	}
}

func mustCosigV1Verifier(t testing.TB, vkey string) note.Verifier {
	t.Helper()
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func count409(tw *testWitness) int {
	return strings.Count(tw.logBuf.String(), "endpoint=add-checkpoint status=409")
}
