// Package verify is the client's decision: whether to trust an attested
// enclave. It combines the hardware checks of policy/attest with the
// transparency checks — the measurement is that of a release in a trusted
// log, proven by an inclusion proof under a checkpoint the log signed and
// the witness quorum cosigned, recent enough, published by a trusted
// operator, not revoked, and reproduced as often as the policy requires —
// into one list of named checks. The verdict is positive only when every
// check passes; every failed check says why.
//
// Everything is offline: the proof is stapled to the evidence (or fetched
// by the caller), and revocations and reproductions are what the caller
// has seen (proofs it fetched or was given).
package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/tlogproof"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/check"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/gpu"
	"github.com/attestlog/attestlog/policy/provenance"
)

// Names of the checks this package adds to the hardware ones.
const (
	ProofPresent        = "proof bundle"
	CheckpointSignature = "checkpoint signed by the log"
	WitnessQuorum       = "witness quorum"
	CheckpointFresh     = "checkpoint fresh"
	InclusionProof      = "inclusion proof"
	ReleaseStatement    = "release statement"
	Operator            = "trusted operator"
	MeasurementMatches  = "measurement matches release"
	NotRevoked          = "not revoked"
	Reproduced          = "reproductions"
)

// Verifier makes decisions under one policy. It is safe for concurrent use.
type Verifier struct {
	// cache holds checkpoints and release signatures already verified:
	// a client checks many enclaves of one fleet against the same
	// checkpoint and release.
	cache verifiedCache

	pol *policy.Policy
	hw  *attest.Verifier
	gpu *gpu.Verifier
	now func() time.Time
	// Provenance checks a release's build provenance under the policy's
	// provenance section and returns the named checks to add (see
	// policy/provenance).
	Provenance func(p *statement.Parsed, now time.Time) check.List
}

// Option configures New.
type Option func(*config)

type config struct {
	baseDir string
	fsys    fs.FS
	now     func() time.Time
}

// WithFS reads the policy's files (trust-root, crl, tdx-collateral) from
// fsys instead of the file system (see attest.WithFS).
func WithFS(fsys fs.FS) Option { return func(c *config) { c.fsys = fsys } }

// WithPolicyDir resolves the policy's relative file names against dir.
func WithPolicyDir(dir string) Option { return func(c *config) { c.baseDir = dir } }

// WithTime fixes the verification time (for saved evidence and tests).
func WithTime(t time.Time) Option { return func(c *config) { c.now = func() time.Time { return t } } }

// WithClock reads the verification time from now at each decision
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// New returns a verifier for pol.
func New(pol *policy.Policy, opts ...Option) (*Verifier, error) {
	c := config{now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	var aopts []attest.Option
	if c.baseDir != "" {
		aopts = append(aopts, attest.WithBaseDir(c.baseDir))
	}
	if c.fsys != nil {
		aopts = append(aopts, attest.WithFS(c.fsys))
	}
	// The clock, not a time: certificate expiry, CRL next-update and TDX
	// collateral are judged when each decision is made.
	aopts = append(aopts, attest.WithClock(c.now))
	hw, err := attest.New(pol.Attestation, aopts...)
	if err != nil {
		return nil, err
	}
	v := &Verifier{pol: pol, hw: hw, now: c.now}
	v.gpu = gpu.NewVerifier(pol.Attestation.GPU, hw.GPURoots()...)
	v.gpu.Now = c.now
	pv, err := provenance.NewFS(&pol.Provenance, c.fsys)
	if err != nil {
		return nil, err
	}
	v.Provenance = func(p *statement.Parsed, now time.Time) check.List {
		cs, _, err := pv.Check(p.Release, p.Statement.Subject, now)
		if err != nil && len(cs) == 0 {
			cs = check.List{check.Fail(provenance.CheckSignature, "%v", err)}
		}
		return cs
	}
	return v, nil
}

// Load reads the policy at path and returns a verifier for it.
func Load(path string, opts ...Option) (*Verifier, error) {
	pol, err := policy.Load(path)
	if err != nil {
		return nil, err
	}
	return New(pol, append([]Option{WithPolicyDir(filepath.Dir(path))}, opts...)...)
}

// Parse reads a policy from its text (files it names are read as opts
// say: WithFS, or WithPolicyDir) and returns a verifier for it.
func Parse(text []byte, opts ...Option) (*Verifier, error) {
	pol, err := policy.Parse(text)
	if err != nil {
		return nil, err
	}
	return New(pol, opts...)
}

// Policy returns the verifier's policy.
func (v *Verifier) Policy() *policy.Policy { return v.pol }

// Input is what a decision is made on.
type Input struct {
	// Evidence is the enclave's attestation evidence.
	Evidence *evidence.Bundle
	// Nonce is the client's fresh nonce that REPORT_DATA must bind.
	Nonce []byte
	// Proof is the proof of the release; nil means the one stapled to the
	// evidence.
	Proof *tlogproof.Proof
	// IndexProof is the log's index proof for the release's measurement;
	// nil means the one stapled to the evidence, if any.
	IndexProof *vindex.Proof
	// Related are proofs of other entries the caller has seen: the
	// revocations and reproductions of the release. Proofs that do not
	// verify, or concern other releases, are ignored.
	Related []*tlogproof.Proof
}

// Verdict is the outcome of a decision.
type Verdict struct {
	Checks check.List `json:"checks"`
	// Hardware holds the fields of the evidence.
	Hardware *attest.Result `json:"hardware,omitempty"`
	// Release describes the logged release, when the proof held one.
	Release *ReleaseInfo `json:"release,omitempty"`
}

// ReleaseInfo describes the release a verdict is about.
type ReleaseInfo struct {
	Log           string   `json:"log"`
	Index         uint64   `json:"index"`
	Version       string   `json:"version"`
	Platform      string   `json:"platform"`
	Measurement   string   `json:"measurement"`
	Operator      string   `json:"operator,omitempty"`
	Source        string   `json:"source"`
	Cosigners     []string `json:"cosigners,omitempty"`
	Reproductions []string `json:"reproduced_by,omitempty"`
	HasProvenance bool     `json:"has_provenance"`
}

// OK reports whether every check passed.
func (v *Verdict) OK() bool { return v.Checks.OK() }

// JSON is the verdict as `attestlog verify --json` prints it, and as the
// WebAssembly client returns it: {"ok": …, "checks": […], …}, indented.
func (v *Verdict) JSON() []byte {
	b, err := json.MarshalIndent(struct {
		OK bool `json:"ok"`
		*Verdict
	}{v.OK(), v}, "", "  ")
	if err != nil {
		// Every field is a plain value: this cannot happen.
		panic(err)
	}
	return b
}

func (v *Verdict) add(c check.Check) { v.Checks = append(v.Checks, c) }

// Verify makes the decision.
func (v *Verifier) Verify(in Input) *Verdict {
	now := v.now()
	vd := &Verdict{}
	hw := v.hw.Verify(in.Evidence, in.Nonce)
	vd.Hardware = hw
	vd.Checks = append(vd.Checks, hw.Checks...)
	// The GPUs, which REPORT_DATA binds (checked just above).
	if in.Evidence != nil {
		vd.Checks = append(vd.Checks, v.gpu.Verify(in.Evidence, in.Nonce)...)
	}
	return v.decide(vd, hw, in, now)
}

// VerifyProof checks a release's proof on its own, with no attestation:
// the checkpoint's signature, witness quorum and freshness, the inclusion
// proof, the statement, its operator (or keyless signer), provenance, and
// revocations and reproductions among related. Its verdict says whether
// the log holds this release as the policy requires; whether an enclave
// runs it is Verify's question.
func (v *Verifier) VerifyProof(proof *tlogproof.Proof, related []*tlogproof.Proof, index *vindex.Proof) *Verdict {
	if proof == nil {
		return v.skipRest(&Verdict{Checks: check.List{check.Fail(ProofPresent, "no proof given")}})
	}
	return v.decide(&Verdict{}, nil, Input{Proof: proof, Related: related, IndexProof: index}, v.now())
}

// decide makes the log and policy part of the decision; hw is nil for a
// proof checked on its own (then no measurement is matched).
func (v *Verifier) decide(vd *Verdict, hw *attest.Result, in Input, now time.Time) *Verdict {
	proof := in.Proof
	if proof == nil && in.Evidence != nil && in.Evidence.Proof != "" {
		p, err := tlogproof.Parse([]byte(in.Evidence.Proof))
		if err != nil {
			vd.add(check.Fail(ProofPresent, "the stapled proof does not parse: %v", err))
			return v.skipRest(vd)
		}
		proof = p
	}
	if proof == nil {
		vd.add(check.Fail(ProofPresent, "no proof: the evidence has none stapled and none was given (fetch one with 'attestlog proof --log URL --measurement HEX')"))
		return v.skipRest(vd)
	}
	vd.add(check.Pass(ProofPresent, "proof of entry %d", proof.Index))

	cp, ok := v.checkpoint(vd, proof.Checkpoint, now)
	if !ok {
		return v.skipRest(vd, CheckpointSignature)
	}
	if err := proof.VerifyInclusion(proof.Extra, cp.N, cp.Hash); err != nil {
		vd.add(check.Fail(InclusionProof, "%v: the proof does not show entry %d in the tree of size %d", err, proof.Index, cp.N))
		return v.skipRest(vd, CheckpointSignature, WitnessQuorum, CheckpointFresh, InclusionProof)
	}
	vd.add(check.Pass(InclusionProof, "entry %d is in %s's tree of size %d", proof.Index, cp.Log.Origin, cp.N))

	st, err := statement.ParseEntry(proof.Extra)
	if err != nil || st.Kind != statement.KindRelease {
		reason := "the logged entry is not a release statement"
		if err != nil {
			reason = fmt.Sprintf("the logged entry does not parse: %v", err)
		}
		vd.add(check.Fail(ReleaseStatement, "%s", reason))
		return v.skipRest(vd, CheckpointSignature, WitnessQuorum, CheckpointFresh, InclusionProof, ReleaseStatement)
	}
	rel := st.Release
	info := &ReleaseInfo{
		Log: cp.Log.Origin, Index: proof.Index, Version: rel.Version, Platform: rel.Platform,
		Measurement: rel.Measurements.Primary(), Source: rel.Source.Repo + "@" + rel.Source.Commit,
		Cosigners: cp.CosignerNames(), HasProvenance: len(rel.Provenance) > 0,
	}
	vd.Release = info
	vd.add(check.Pass(ReleaseStatement, "release %s for %s from %s", rel.Version, rel.Platform, info.Source))

	signers := []string{"keyless"}
	switch {
	case st.Envelope == nil: // keyless: a Sigstore bundle from a CI identity
		_, id, err := provenance.VerifyKeylessEntry(proof.Extra, &v.pol.Provenance, now)
		if err != nil {
			vd.add(check.Fail(Operator, "keyless release: %v", err))
		} else {
			info.Operator = id.Name
			vd.add(check.Pass(Operator, "signed keylessly by %s (%s, %s)", id.Name, id.Issuer, id.Subject))
		}
	default:
		signers = nil
		for _, k := range v.operatorsOf(proof.Extra, st) {
			signers = append(signers, k.ID())
		}
		if len(signers) > 0 {
			op, _ := policy.Named(v.pol.Operators, v.operatorsOf(proof.Extra, st)[0])
			info.Operator = op.Name
			vd.add(check.Pass(Operator, "signed by operator %s", op.Name))
		} else {
			vd.add(check.Fail(Operator, "the release is not signed by an operator of the policy (add an 'operator NAME KEY' line to trust its signer)"))
		}
	}

	if hw != nil {
		vd.add(matchMeasurements(hw, rel))
		vd.add(v.gpu.CheckRelease(in.Evidence, rel))
	}
	if v.Provenance != nil {
		vd.Checks = append(vd.Checks, v.Provenance(st, now)...)
	}

	entry := proof.Extra
	ref := statement.RefOf(proof.Index, entry)
	related := in.Related
	if in.Evidence != nil {
		for i, r := range in.Evidence.Related {
			p, err := tlogproof.Parse([]byte(r))
			if err != nil {
				vd.add(check.Fail(NotRevoked, "stapled related proof %d does not parse: %v", i, err))
				return v.skipRest(vd, CheckpointSignature, WitnessQuorum, CheckpointFresh, InclusionProof, ReleaseStatement, Operator, MeasurementMatches, NotRevoked)
			}
			related = append(related, p)
		}
	}
	rl := v.related(cp.Log.Origin, ref, rel, related)
	reinstated, _ := v.pol.Reinstates(st.Envelope)
	vd.add(v.notRevoked(in, proof, cp, rel, policy.Release{Index: proof.Index, Signers: signers, Reinstated: reinstated.Name}, rl, now))
	repros, mismatches := rl.repros, rl.mismatches
	info.Reproductions = repros
	need := v.pol.Attestation.Reproductions
	switch {
	case len(mismatches) > 0 && !v.pol.Attestation.AllowReproductionMismatch:
		vd.add(check.Fail(Reproduced, "a policy auditor's rebuild did not reproduce the release's measurement (%s); the policy says reproduction-mismatch deny", strings.Join(mismatches, "; ")))
	case len(repros) >= need && need == 0:
		vd.add(check.Pass(Reproduced, "none required by policy (%d seen)", len(repros)))
	case len(repros) >= need:
		vd.add(check.Pass(Reproduced, "reproduced by %s (policy requires %d)", strings.Join(repros, ", "), need))
	default:
		vd.add(check.Fail(Reproduced, "policy requires %d independent reproductions by its auditors, %d seen %v", need, len(repros), repros))
	}
	return vd
}

// notRevoked decides the NotRevoked check with the policy's one rule
// (policy.Revokes): the revocations of this release among the related
// entries, and the log's index proof for the release's identity, which
// lists every revocation of a release with that identity (required when
// the policy says revocation-proof required).
func (v *Verifier) notRevoked(in Input, proof *tlogproof.Proof, relCP *policy.Checkpoint, rel *statement.Release, me policy.Release, rl relatedEntries, now time.Time) check.Check {
	var revs []string
	for _, r := range rl.targeting {
		if ok, why := v.pol.Revokes(me, r); ok {
			revs = append(revs, why+rl.reasons[r.Index])
		}
	}
	if len(revs) > 0 {
		return check.Fail(NotRevoked, "release %d was revoked: %s", proof.Index, strings.Join(revs, "; "))
	}
	ip := in.IndexProof
	if ip == nil && in.Evidence != nil && in.Evidence.IndexProof != "" {
		p, err := vindex.ParseProof([]byte(in.Evidence.IndexProof))
		if err != nil {
			return check.Fail(NotRevoked, "the stapled index proof does not parse: %v", err)
		}
		ip = p
	}
	id := vindex.Identity(rel)
	if ip == nil {
		if v.pol.Attestation.RequireRevocationProof {
			return check.Fail(NotRevoked, "the policy requires the log's index proof that nothing revoked the release's identity, and there is none (an enclave staples it; 'attestlog proof --log URL --identity-of N' fetches it)")
		}
		return check.Pass(NotRevoked, "no revocation of release %d among the %d related entries seen; that none exists is not proven (policy: revocation-proof off)", proof.Index, len(rl.targeting)+len(rl.revocations))
	}
	// Usually the release proof's own checkpoint (stapled together):
	// remembered, so its signatures are checked once.
	cp, err := v.openCheckpoint(ip.Commit.Checkpoint)
	if err != nil {
		return check.Fail(NotRevoked, "index proof: %v", err)
	}
	if cp.Log.Origin != relCP.Log.Origin {
		return check.Fail(NotRevoked, "the index proof is of log %s, the release of %s", cp.Log.Origin, relCP.Log.Origin)
	}
	if _, err := v.pol.CheckpointFresh(cp, now); err != nil {
		return check.Fail(NotRevoked, "the index proof's checkpoint: %v (a revocation since would not show)", err)
	}
	if id == nil || ip.Type != vindex.KeyIdentity || !bytes.Equal(ip.Digest, id) {
		return check.Fail(NotRevoked, "the index proof is for %s %s, not the identity of release %d (%s)", ip.Type, short(hex.EncodeToString(ip.Digest)), proof.Index, short(hex.EncodeToString(id)))
	}
	ver, err := v.pol.IndexProofUnder(ip, cp)
	if err != nil {
		return check.Fail(NotRevoked, "%v", err)
	}
	if err := v.pol.IndexCurrent(ver, cp, now); err != nil {
		return check.Fail(NotRevoked, "%v", err)
	}
	if proof.Index >= ver.Checkpoint.Size {
		return check.Fail(NotRevoked, "the index proof covers the log's first %d entries, not release %d: fetch a fresh one", ver.Checkpoint.Size, proof.Index)
	}
	listed := false
	var ignored []string
	for _, it := range ver.Items {
		switch {
		case it.Index == proof.Index && it.Kind == vindex.KindRelease:
			listed = true
		case it.Kind == vindex.KindRevocation:
			ok, why := v.pol.Revokes(me, policy.Revocation{Index: it.Index, Envelope: rl.revocations[it.Index]})
			if ok {
				revs = append(revs, why+rl.reasons[it.Index])
			} else {
				ignored = append(ignored, why)
			}
		}
	}
	if !listed {
		return check.Fail(NotRevoked, "the log's index does not list release %d under its identity: the log's index and its entries disagree", proof.Index)
	}
	if len(revs) > 0 {
		return check.Fail(NotRevoked, "the identity of release %d (%s) was revoked: %s", proof.Index, short(rel.Measurements.Primary()), strings.Join(revs, "; "))
	}
	more := ""
	if len(ignored) > 0 {
		more = "; not counted: " + strings.Join(ignored, "; ")
	}
	return check.Pass(NotRevoked, "the log's index over its first %d entries (checkpoint of size %d, quorum %s) lists %d entries about the identity of release %d (%s) and no revocation that applies to it%s",
		ver.Checkpoint.Size, cp.N, v.pol.Quorum, len(ver.Items), proof.Index, short(rel.Measurements.Primary()), more)
}

// checkpoint adds the checkpoint signature, quorum and freshness checks.
func (v *Verifier) checkpoint(vd *Verdict, signed []byte, now time.Time) (*policy.Checkpoint, bool) {
	cp, err := v.openCheckpoint(signed)
	if err != nil {
		vd.add(check.Fail(CheckpointSignature, "%v", err))
		return nil, false
	}
	vd.add(check.Pass(CheckpointSignature, "%s, size %d", cp.Log.Origin, cp.N))
	switch {
	case v.pol.Quorum == nil:
		vd.add(check.Fail(WitnessQuorum, "the policy names no quorum (add 'quorum NAME', or 'quorum none' to trust the log alone)"))
	case cp.QuorumMet:
		vd.add(check.Pass(WitnessQuorum, "cosigned by %v (quorum %s)", cp.CosignerNames(), v.pol.Quorum))
	default:
		vd.add(check.Fail(WitnessQuorum, "cosigned by %v, short of the quorum %s", cp.CosignerNames(), v.pol.Quorum))
	}
	age, err := v.pol.CheckpointFresh(cp, now)
	switch {
	case err != nil:
		vd.add(check.Fail(CheckpointFresh, "%v", err))
	case v.pol.Attestation.MaxCheckpointAge == 0:
		vd.add(check.Pass(CheckpointFresh, "not required by policy"))
	default:
		vd.add(check.Pass(CheckpointFresh, "quorum %s cosigned %v ago (policy allows %v)", v.pol.Quorum, age.Round(time.Second), v.pol.Attestation.MaxCheckpointAge))
	}
	return cp, true
}

// matchMeasurements compares the evidence with the release: the primary
// measurement and every optional value the release fixes.
func matchMeasurements(hw *attest.Result, rel *statement.Release) check.Check {
	type pair struct{ name, logged, got string }
	var pairs []pair
	if hw.Platform != rel.Platform {
		// An Azure CVM's SNP MEASUREMENT is its paravisor's: a sev-snp
		// release naming it must not accept every guest on it, nor an
		// azure-sev-snp release raw SNP evidence without its PCRs.
		return check.Fail(MeasurementMatches, "the release is for %s, the evidence is %s", rel.Platform, hw.Platform)
	}
	switch statement.HardwarePlatform(rel.Platform) {
	case statement.PlatformSNP:
		if hw.SNP == nil {
			return check.Fail(MeasurementMatches, "the release is for %s, the evidence is not", rel.Platform)
		}
		m := rel.Measurements.SNP
		pairs = append(pairs, pair{"launch digest", m.LaunchDigest, hw.SNP.LaunchDigest})
		if m.GuestPolicy != "" {
			pairs = append(pairs, pair{"guest policy", m.GuestPolicy, hw.SNP.GuestPolicy})
		}
		if m.FamilyID != "" {
			pairs = append(pairs, pair{"family id", m.FamilyID, hw.SNP.FamilyID})
		}
		if m.ImageID != "" {
			pairs = append(pairs, pair{"image id", m.ImageID, hw.SNP.ImageID})
		}
	case statement.PlatformTDX:
		if hw.TDX == nil {
			return check.Fail(MeasurementMatches, "the release is for %s, the evidence is not", rel.Platform)
		}
		m := rel.Measurements.TDX
		pairs = append(pairs, pair{"MRTD", m.MRTD, hw.TDX.MRTD})
		for _, p := range []pair{{"RTMR0", m.RTMR0, hw.TDX.RTMR0}, {"RTMR1", m.RTMR1, hw.TDX.RTMR1},
			{"RTMR2", m.RTMR2, hw.TDX.RTMR2}, {"RTMR3", m.RTMR3, hw.TDX.RTMR3}, {"MRCONFIGID", m.MRConfigID, hw.TDX.MRConfigID}} {
			if p.logged != "" {
				pairs = append(pairs, p)
			}
		}
	}
	if v := rel.Measurements.VTPM; v != nil {
		if hw.VTPM == nil {
			return check.Fail(MeasurementMatches, "the release names vTPM PCRs, the evidence has none")
		}
		for _, i := range v.Indices() {
			k := strconv.Itoa(i)
			if _, ok := hw.VTPM.PCRs[k]; !ok {
				return check.Fail(MeasurementMatches, "the release names PCR %s, which the evidence's TPM quote does not cover", k)
			}
			pairs = append(pairs, pair{"PCR " + k, v.PCRs[k], hw.VTPM.PCRs[k]})
		}
	}
	var names []string
	for _, p := range pairs {
		if p.logged != p.got {
			return check.Fail(MeasurementMatches, "%s %s is not the logged release's %s", p.name, short(p.got), short(p.logged))
		}
		names = append(names, p.name)
	}
	endorsed := ""
	if e := firmwareEndorser(rel); e != "" {
		if hw.Endorsement == nil {
			return check.Fail(MeasurementMatches, "the release says its firmware is endorsed by %s, and the evidence staples no endorsement that verified (see the firmware endorsement check; a trust-root gce-tcb line names Google's root)", e)
		}
		endorsed = fmt.Sprintf("; the firmware endorsed by %s (%s)", e, hw.Endorsement)
	}
	return check.Pass(MeasurementMatches, "%s %s equal the release's%s", strings.Join(names, ", "), short(pairs[0].got), endorsed)
}

// firmwareEndorser is who the release says endorses its firmware, or "".
func firmwareEndorser(rel *statement.Release) string {
	switch {
	case rel.Measurements.SNP != nil:
		return rel.Measurements.SNP.FirmwareEndorsement
	case rel.Measurements.TDX != nil:
		return rel.Measurements.TDX.FirmwareEndorsement
	}
	return ""
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// relatedEntries is what the related entries a client was handed say
// about a release.
type relatedEntries struct {
	// targeting are the revocations naming the release itself.
	targeting []policy.Revocation
	// revocations are the envelopes of every revocation at hand, by
	// index: the index proof's revocations of other releases with the
	// same identity are decided on them.
	revocations map[uint64]*statement.Envelope
	// reasons are their reasons, as ": REASON (ADVISORY)".
	reasons map[uint64]string
	// repros are the distinct auditors that reproduced the release with
	// a matching outcome; mismatches the policy auditors' mismatches.
	repros, mismatches []string
}

// related reads the related entries: only those proven under a
// checkpoint of the log that the quorum cosigned (a related entry the
// witnesses never saw could be a view shown to this client alone).
func (v *Verifier) related(origin string, ref statement.EntryRef, rel *statement.Release, rs []*tlogproof.Proof) relatedEntries {
	out := relatedEntries{revocations: map[uint64]*statement.Envelope{}, reasons: map[uint64]string{}}
	auditors := map[string]bool{}
	for _, p := range rs {
		cp, err := v.openCheckpoint(p.Checkpoint)
		if err != nil || !cp.QuorumMet || cp.Log.Origin != origin || p.VerifyInclusion(p.Extra, cp.N, cp.Hash) != nil {
			continue
		}
		st, err := statement.Parse(p.Extra)
		if err != nil {
			continue
		}
		switch st.Kind {
		case statement.KindRevocation:
			out.revocations[p.Index] = st.Envelope
			out.reasons[p.Index] = ": " + st.Revocation.Reason
			if st.Revocation.Advisory != "" {
				out.reasons[p.Index] += " (" + st.Revocation.Advisory + ")"
			}
			if st.Ref == ref {
				out.targeting = append(out.targeting, policy.Revocation{Index: p.Index, Envelope: st.Envelope})
			}
		case statement.KindReproduction:
			if st.Ref != ref {
				continue
			}
			k, ok := st.Envelope.VerifiedBy(policy.Keys(v.pol.Auditors))
			if !ok {
				continue
			}
			a, _ := policy.Named(v.pol.Auditors, k)
			if st.Reproduction.Outcome == statement.OutcomeMismatch {
				out.mismatches = append(out.mismatches, fmt.Sprintf("entry %d by %s", p.Index, a.Name))
				continue
			}
			if st.Reproduction.Outcome != statement.OutcomeMatch {
				continue
			}
			if st.Reproduction.Unsandboxed && !v.pol.Attestation.AllowUnsandboxedReproductions {
				continue // the recipe ran on the auditor's host
			}
			if st.Reproduction.Measurements.Primary() != rel.Measurements.Primary() {
				continue
			}
			auditors[a.Name] = true
		}
	}
	for a := range auditors {
		out.repros = append(out.repros, a)
	}
	sort.Strings(out.repros)
	return out
}

// skipRest marks the checks that could not run because an earlier one
// failed, so the checklist is always complete.
func (v *Verifier) skipRest(vd *Verdict, done ...string) *Verdict {
	all := []string{CheckpointSignature, WitnessQuorum, CheckpointFresh, InclusionProof, ReleaseStatement, Operator, MeasurementMatches, NotRevoked, Reproduced}
	have := map[string]bool{}
	for _, c := range vd.Checks {
		have[c.Name] = true
	}
	for _, d := range done {
		have[d] = true
	}
	for _, n := range all {
		if n == MeasurementMatches && vd.Hardware == nil {
			continue // a proof checked on its own matches no evidence
		}
		if !have[n] {
			vd.add(check.Fail(n, "not checked: an earlier check failed"))
		}
	}
	return vd
}

// Hardware runs only the hardware checks (with no nonce), to read the
// evidence's measurement before fetching its proof.
func (v *Verifier) Hardware(b *evidence.Bundle) *attest.Result {
	if b == nil {
		return nil
	}
	return v.hw.Inspect(b)
}

// verifiedCache remembers successful signature verifications, keyed by
// the SHA-256 of the signed bytes. It is small and bounded: it is cleared
// when full.
type verifiedCache struct {
	mu          sync.Mutex
	checkpoints map[[32]byte]*policy.Checkpoint
	operators   map[[32]byte][]statement.PublicKey
}

const maxCached = 256

// openCheckpoint is v.pol.InspectCheckpoint, remembered.
func (v *Verifier) openCheckpoint(signed []byte) (*policy.Checkpoint, error) {
	h := sha256.Sum256(signed)
	v.cache.mu.Lock()
	cp := v.cache.checkpoints[h]
	v.cache.mu.Unlock()
	if cp != nil {
		return cp, nil
	}
	cp, err := v.pol.InspectCheckpoint(signed)
	if err != nil {
		return nil, err
	}
	v.cache.mu.Lock()
	if v.cache.checkpoints == nil || len(v.cache.checkpoints) >= maxCached {
		v.cache.checkpoints = map[[32]byte]*policy.Checkpoint{}
	}
	v.cache.checkpoints[h] = cp
	v.cache.mu.Unlock()
	return cp, nil
}

// operatorsOf returns the policy operator keys that signed the release
// entry (none: no operator did), remembered.
func (v *Verifier) operatorsOf(entry []byte, st *statement.Parsed) []statement.PublicKey {
	h := sha256.Sum256(entry)
	v.cache.mu.Lock()
	ks, ok := v.cache.operators[h]
	v.cache.mu.Unlock()
	if ok {
		return ks
	}
	ks = st.Envelope.VerifiedAll(policy.Keys(v.pol.Operators))
	v.cache.mu.Lock()
	if v.cache.operators == nil || len(v.cache.operators) >= maxCached {
		v.cache.operators = map[[32]byte][]statement.PublicKey{}
	}
	v.cache.operators[h] = ks
	v.cache.mu.Unlock()
	return ks
}

func (c *verifiedCache) reset() {
	c.mu.Lock()
	c.checkpoints, c.operators = nil, nil
	c.mu.Unlock()
}
