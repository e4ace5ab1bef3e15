// Package channeltest builds an attested enclave for tests of the
// channel: a demo SEV-SNP enclave (internal/demo/enclave) running a
// release logged in an in-memory log (x/mod's tlog, checkpoints signed by
// a note key), the client policy that trusts them, and the staple an
// enclave agent serves (the release's proof under the newest checkpoint,
// and the proofs of its revocations). Test scaffolding: the binary never
// links it.
package channeltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/attestlog/attestlog/internal/tlogtest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"


	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/evidence/stapler"
	"github.com/attestlog/attestlog/policy/verify"
)

// Fleet is a logged release and the demo enclave that runs it.
type Fleet struct {
	Enclave    *enclave.Enclave
	Dir        string // holds the policy and the demo root it names
	PolicyPath string
	Operator   *statement.Signer
	Release    uint64 // the release's index in the log

	log      *tlogtest.Log // the tests' one in-memory log
	mu       sync.Mutex
	revoked  []uint64
	failNext error
}

// NewFleet logs a release of a fresh measurement and returns the enclave
// that runs it (with gpus demo GPUs, carried as the release names them).
func NewFleet(t testing.TB, gpus int) *Fleet {
	t.Helper()
	f := &Fleet{Dir: t.TempDir(), log: tlogtest.New(t, "channel.test/log", 0)}
	vkey := f.log.VKey
	var err error
	f.Operator, _ = statement.GenerateSigner(statement.AlgEd25519)
	m := make([]byte, 48)
	rand.Read(m)
	var opts []enclave.Option
	var g *statement.GPUs
	if gpus > 0 {
		opts = append(opts, enclave.WithGPUs(gpus))
		g = &statement.GPUs{Vendor: "nvidia", Arch: enclave.DemoGPUArch, Count: gpus, Drivers: []string{enclave.DemoGPUDriver}, Golden: map[string]string{}}
		for _, blk := range []int{1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13} {
			g.Golden[fmt.Sprint(blk)] = hex.EncodeToString(enclave.DemoGPUBlock(blk))
		}
	}
	if f.Enclave, err = enclave.NewSNP(m, opts...); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.Dir, "root.pem"), f.Enclave.RootPEM(), 0o644)
	extra := ""
	if gpus > 0 {
		os.WriteFile(filepath.Join(f.Dir, "gpu-root.pem"), f.Enclave.GPURootPEM(), 0o644)
		extra = fmt.Sprintf("trust-root gpu gpu-root.pem\ngpu nvidia count=%d arch=hopper mode=cc rims=optional\n", gpus)
	}
	payload, err := statement.EncodeRelease(
		[]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("ab", 32)}}},
		&statement.Release{
			Version: "1.0.0", Time: time.Now().UTC().Truncate(time.Second), Platform: statement.PlatformSNP,
			Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: hex.EncodeToString(m)}},
			Source:       statement.Source{Repo: "https://example.com/enclave", Commit: strings.Repeat("c", 40)},
			Recipe:       statement.Recipe{Argv: []string{"make"}},
			GPUs:         g,
		})
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(payload, f.Operator)
	if err != nil {
		t.Fatal(err)
	}
	f.Release = f.add(t, e)
	f.PolicyPath = filepath.Join(f.Dir, "policy.txt")
	pol := fmt.Sprintf("log %s\nquorum none\noperator acme %s\ntrust-root sev-snp root.pem\n%s", vkey, f.Operator.Public(), extra)
	if err := os.WriteFile(f.PolicyPath, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// Verifier is a verifier for the fleet's policy.
func (f *Fleet) Verifier(t testing.TB) *verify.Verifier {
	t.Helper()
	v, err := verify.Load(f.PolicyPath)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *Fleet) add(_ testing.TB, entry []byte) uint64 { return f.log.Add(entry) }

// proof is the proof of entry i under a checkpoint of the log's size now.
func (f *Fleet) proof(i uint64) (string, error) {
	return string(f.log.Proof(i, 0).Marshal()), nil
}

// Revoke logs the operator's revocation of the release: the next staple
// carries its proof, and clients refuse the enclave from then on.
func (f *Fleet) Revoke(t testing.TB) {
	t.Helper()
	ref := statement.RefOf(f.Release, f.log.Entry(f.Release))
	payload, err := statement.EncodeRevocation(ref, &statement.Revocation{Reason: "CVE-2026-0001", Time: time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(payload, f.Operator)
	if err != nil {
		t.Fatal(err)
	}
	idx := f.add(t, e)
	f.mu.Lock()
	f.revoked = append(f.revoked, idx)
	f.mu.Unlock()
}

// FailStaples makes the next staple fetches fail with err (nil: succeed).
func (f *Fleet) FailStaples(err error) {
	f.mu.Lock()
	f.failNext = err
	f.mu.Unlock()
}

// Staple is an agent's Staple function: the release's proof and its
// revocations' proofs under the log's newest checkpoint.
func (f *Fleet) Staple(context.Context, *evidence.Bundle) (stapler.Staple, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext != nil {
		return stapler.Staple{}, f.failNext
	}
	p, err := f.proof(f.Release)
	if err != nil {
		return stapler.Staple{}, err
	}
	st := stapler.Staple{Proof: p}
	for _, r := range f.revoked {
		rp, err := f.proof(r)
		if err != nil {
			return stapler.Staple{}, err
		}
		st.Related = append(st.Related, rp)
	}
	return st, nil
}
