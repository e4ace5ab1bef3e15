// Package fleet builds an attested enclave for tests and benchmarks of
// the channel: a demo SEV-SNP enclave (internal/demo/enclave) running a
// release logged in an in-memory log (x/mod's tlog, checkpoints signed by
// a note key), the client policy that trusts them, and the staple an
// enclave agent serves (the release's proof under the newest checkpoint,
// and the proofs of its revocations). A demo: its root is a test root
// that only the policy it writes trusts. channel/channeltest wraps it for
// tests; `attestlog bench channel` runs on it.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
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

	mu       sync.Mutex
	signer   note.Signer
	vkey     string
	entries  [][]byte
	hashes   []tlog.Hash
	revoked  []uint64
	failNext error
}

// New logs a release of a fresh measurement and returns the enclave
// that runs it (with gpus demo GPUs, carried as the release names them),
// writing the policy and the demo roots into dir.
func New(dir string, gpus int) (*Fleet, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "channel.test/log")
	if err != nil {
		return nil, err
	}
	s, _ := note.NewSigner(skey)
	f := &Fleet{Dir: dir, signer: s, vkey: vkey}
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
		return nil, err
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
		return nil, err
	}
	e, err := statement.Sign(payload, f.Operator)
	if err != nil {
		return nil, err
	}
	if f.Release, err = f.add(e); err != nil {
		return nil, err
	}
	f.PolicyPath = filepath.Join(f.Dir, "policy.txt")
	pol := fmt.Sprintf("log %s\nquorum none\noperator acme %s\ntrust-root sev-snp root.pem\n%s", vkey, f.Operator.Public(), extra)
	if err := os.WriteFile(f.PolicyPath, []byte(pol), 0o644); err != nil {
		return nil, err
	}
	return f, nil
}

// Verifier is a verifier for the fleet's policy.
func (f *Fleet) Verifier(opts ...verify.Option) (*verify.Verifier, error) {
	return verify.Load(f.PolicyPath, opts...)
}

func (f *Fleet) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = f.hashes[x]
	}
	return out, nil
}

func (f *Fleet) add(entry []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hs, err := tlog.StoredHashes(int64(len(f.entries)), entry, f)
	if err != nil {
		return 0, err
	}
	f.hashes = append(f.hashes, hs...)
	f.entries = append(f.entries, entry)
	return uint64(len(f.entries) - 1), nil
}

// proof is the proof of entry i under a checkpoint of the log's size now.
func (f *Fleet) proof(i uint64) (string, error) {
	n := int64(len(f.entries))
	root, err := tlog.TreeHash(n, f)
	if err != nil {
		return "", err
	}
	rp, err := tlog.ProveRecord(n, int64(i), f)
	if err != nil {
		return "", err
	}
	cp, err := note.Sign(&note.Note{Text: fmt.Sprintf("channel.test/log\n%d\n%s\n", n, root)}, f.signer)
	if err != nil {
		return "", err
	}
	p := &tlogproof.Proof{Extra: f.entries[i], Index: i, Hashes: rp, Checkpoint: cp}
	return string(p.Marshal()), nil
}

// Revoke logs the operator's revocation of the release: the next staple
// carries its proof, and clients refuse the enclave from then on.
func (f *Fleet) Revoke() error {
	f.mu.Lock()
	ref := statement.RefOf(f.Release, f.entries[f.Release])
	f.mu.Unlock()
	payload, err := statement.EncodeRevocation(ref, &statement.Revocation{Reason: "CVE-2026-0001", Time: time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	e, err := statement.Sign(payload, f.Operator)
	if err != nil {
		return err
	}
	idx, err := f.add(e)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.revoked = append(f.revoked, idx)
	f.mu.Unlock()
	return nil
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
