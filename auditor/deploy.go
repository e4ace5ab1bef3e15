package auditor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/attestlog/attestlog/auditor/internal/store"
	"github.com/attestlog/attestlog/channel"
	"github.com/attestlog/attestlog/channel/keyset"
	"github.com/attestlog/attestlog/internal/egress"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/attest"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/policy/gpu"
	"github.com/attestlog/attestlog/policy/gpu/spdm"
)

// deploymentWatch polls the watched deployments: it fetches each one's
// attestation evidence, verifies it, decides from the auditor's own
// verified copy of the log whether what it runs is logged, revoked or
// failed to rebuild, and raises alerts; it counts failed polls in a row.
// It reaches the state database only through watchStore, and the logs
// only through what the follower keeps of them (followedLog: the index
// replay, under its mu, and the log's client for absence proofs).
type deploymentWatch struct {
	st     watchStore
	alerts *alerter
	// metrics counts polls by verdict.
	metrics *metrics
}

// watchStore is what the deployment watch asks of the state database
// (the auditor's *store.Store implements it). No method takes a lock of
// the auditor's, and the watch calls none with a followed log's mu held.
// None is retried beyond SQLite's busy timeout: a poll that gets an
// error returns it, and the next poll decides afresh, raising what it
// finds (alerts are deduplicated by key, so one raised before is not
// raised twice, and one not recorded is raised then if the deployment
// still shows what caused it; what it showed only on the poll whose
// alert failed to record is in that poll's error and log line, not in
// an alert).
type watchStore interface {
	alertStore
	// DeploymentFailed counts one failed poll of deployment name at t,
	// atomically (one statement): it extends the deployment's run of
	// failures or starts one at t, and returns the run. It is not
	// idempotent: call it once per failed poll. On an error the poll is
	// not counted.
	DeploymentFailed(ctx context.Context, name string, t time.Time) (store.FailureRun, error)
	// DeploymentAnswered ends deployment name's run of failed polls, if
	// any. It is idempotent.
	DeploymentAnswered(ctx context.Context, name string) error
	// ReleasesByMeasurement returns origin's committed releases with
	// measurement m (those of batches the follower applied), by index.
	ReleasesByMeasurement(ctx context.Context, origin, m string) ([]store.Release, error)
	// Log returns how far origin is followed and verified, or
	// store.ErrNotFound before its first tree.
	Log(ctx context.Context, origin string) (*store.LogState, error)
}

// DeploymentStatus is the outcome of the latest poll of a deployment.
type DeploymentStatus struct {
	Name        string    `json:"name"`
	URL         string    `json:"url"`
	Polled      time.Time `json:"polled,omitzero"`
	Measurement string    `json:"measurement,omitempty"`
	// Verdict is "ok", "pending", "unreachable" (the poll failed), or the
	// kind of the alert raised.
	Verdict  string  `json:"verdict,omitempty"`
	Releases []int64 `json:"releases,omitempty"`
	// Error is, when the poll failed, its category (one of the Failure*
	// words: the error itself, which may hold what the deployment or
	// whatever it pointed the auditor at answered, is in the auditor's
	// log only); while "pending", why.
	Error string `json:"error,omitempty"`
	// Failures is how many polls in a row have failed, this one included.
	Failures int `json:"failures,omitempty"`
	// GPUs is what each of its GPUs reported at the last poll.
	GPUs []GPUStatus `json:"gpus,omitempty"`
	// KeySet is the hex SHA-256 of the key set its attestation document
	// commits to (an enclave agent's), and KeySetNotAfter its expiry.
	KeySet         string    `json:"key_set,omitempty"`
	KeySetNotAfter time.Time `json:"key_set_not_after,omitzero"`
	// StapledAt is when the log signed the index checkpoint of the
	// index proof stapled to it: the staple's age is the time since.
	StapledAt time.Time `json:"stapled_at,omitzero"`
}

// keySetStatus reads what the dashboard shows of an attestation
// document: its key set and expiry, and when the stapled index proof's
// checkpoint was signed (as the document says; the verdict checks it).
func keySetStatus(b *evidence.Bundle) (keySet string, notAfter, stapled time.Time) {
	if ks, err := b.ParsedKeySet(); err == nil && ks != nil {
		d := keyset.Digest(b.KeySet)
		keySet, notAfter = hex.EncodeToString(d[:]), ks.NotAfter
	}
	if ip, err := vindex.ParseProof([]byte(b.IndexProof)); err == nil {
		if ic, err := statement.ParseIndexCheckpoint(ip.Commit.Extra); err == nil {
			stapled = ic.Time
		}
	}
	return keySet, notAfter, stapled
}

// GPUStatus is one GPU of a deployment as last seen (the report's own
// word, shown beside the verdict that checked it).
type GPUStatus struct {
	Arch   string `json:"arch"`
	Driver string `json:"driver_version,omitempty"`
	VBIOS  string `json:"vbios_version,omitempty"`
}

// DeploymentAlert is the evidence of the alerts about a deployment.
type DeploymentAlert struct {
	Deployment  string          `json:"deployment"`
	URL         string          `json:"url"`
	Nonce       string          `json:"nonce"`
	Measurement string          `json:"measurement,omitempty"`
	Bundle      json.RawMessage `json:"evidence,omitempty"` // the evidence bundle as served
	Result      *attest.Result  `json:"verification,omitempty"`
	Releases    []store.Release `json:"releases,omitempty"`
	// AbsenceProof is, for an unlogged measurement, the log's own index
	// proof that no entry has it (attestlog.dev/vindex-proof/v2), when
	// the log gave one that verifies under the log's policy: the alert
	// then needs no trust in this auditor.
	AbsenceProof string `json:"absence_proof,omitempty"`
	// Failure is, for a poll that got no evidence, its category;
	// Failures how many polls in a row failed, since FailingSince.
	Failure      string    `json:"failure,omitempty"`
	Failures     int       `json:"failures,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// Categories of a failed poll of a deployment: all that /status, the
// dashboard, alerts and webhooks say of it.
const (
	FailureUnreachable     = "unreachable"        // no connection, or it broke
	FailureHTTPStatus      = "http-status"        // an answer other than 200 OK
	FailureRedirectRefused = "redirect-refused"   // a redirect off the URL's origin
	FailureAddressRefused  = "address-refused"    // a non-public address, without allow_private
	FailureMalformed       = "evidence-malformed" // an answer that is no evidence bundle
	FailureTimeout         = "timeout"            // no whole answer within the timeout
	FailureTooLarge        = "too-large"          // an answer over evidence.MaxBundleSize
	// FailureKeyNotAttested: over https, the connection's TLS key is not
	// the one the attestation document's key set names (a relay or an
	// interceptor in front of the enclave, or a document replayed).
	FailureKeyNotAttested = "key-not-attested"
)

// failureCategory sorts the error of a failed fetch into its category.
func failureCategory(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, channel.ErrKeyNotAttested):
		return FailureKeyNotAttested
	case errors.Is(err, egress.ErrAddressRefused):
		return FailureAddressRefused
	case errors.Is(err, egress.ErrRedirectRefused):
		return FailureRedirectRefused
	case errors.Is(err, evidence.ErrTooLarge):
		return FailureTooLarge
	case errors.Is(err, evidence.ErrStatus):
		return FailureHTTPStatus
	case errors.Is(err, evidence.ErrMalformed):
		return FailureMalformed
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FailureTimeout
	}
	return FailureUnreachable
}

// pollFailed records a poll of d that got no evidence. What is published
// (status, alerts) is the category; the error is logged here (malformed
// evidence) or returned, for the caller to log. The
// failures in a row are counted in the database, under the time of the
// first (so across restarts and `audit --once` runs): malformed evidence
// raises evidence-invalid at once, anything else deployment-unreachable
// once d.cfg.UnreachableAfter polls in a row failed. Each is raised once
// per run of failures and category, never keyed on the error's text.
func (w *deploymentWatch) pollFailed(ctx context.Context, d *deployment, st *DeploymentStatus, ev DeploymentAlert, err error) error {
	cat := failureCategory(err)
	run, serr := w.st.DeploymentFailed(ctx, d.cfg.Name, st.Polled)
	if serr != nil {
		return errors.Join(err, serr)
	}
	st.Verdict, st.Error, st.Failures = "unreachable", cat, run.Polls
	ev.Failure, ev.Failures, ev.FailingSince = cat, run.Polls, run.Since
	subject := "deployment/" + d.cfg.Name
	key := d.cfg.Name + "|" + cat + "|" + run.Since.Format(time.RFC3339Nano)
	switch {
	case cat == FailureMalformed:
		d.logger.Warn("deployment served malformed evidence", "failures", run.Polls, "err", err)
		st.Verdict = AlertEvidenceInvalid
		return w.alerts.raise(ctx, w.st, AlertEvidenceInvalid, key, subject,
			fmt.Sprintf("deployment %s served malformed evidence (%s); the parser's error is in the auditor's log", d.cfg.Name, cat), ev)
	case cat == FailureKeyNotAttested:
		d.logger.Warn("deployment's TLS key is not its attested key", "failures", run.Polls, "err", err)
		st.Verdict = AlertEvidenceInvalid
		return w.alerts.raise(ctx, w.st, AlertEvidenceInvalid, key, subject,
			fmt.Sprintf("deployment %s: the TLS key of the connection is not the key its attestation document's key set names (%s): a relay or an interceptor in front of the enclave, and every client refuses it", d.cfg.Name, cat), ev)
	case run.Polls >= d.cfg.UnreachableAfter:
		st.Verdict = AlertDeploymentUnreachable
		if rerr := w.alerts.raise(ctx, w.st, AlertDeploymentUnreachable, key, subject,
			fmt.Sprintf("deployment %s gave the auditor no evidence in %d polls in a row since %s (%s)", d.cfg.Name, run.Polls, run.Since.Format(time.RFC3339), cat), ev); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return fmt.Errorf("%s, %d failed polls in a row: %w", cat, run.Polls, err)
}

// fetchDocument reads the deployment's attestation document: over https
// as every client of the attested channel reads it (channel.FetchDocument:
// on a connection whose TLS key the document's key set must name, the
// enclave's self-signed certificate trusted for that alone), over http
// as evidence.FetchDocument. Either way no hardware report is spent.
func (d *deployment) fetchDocument(ctx context.Context) (*evidence.Bundle, error) {
	if u, err := url.Parse(d.cfg.URL); err == nil && u.Scheme == "https" {
		return channel.FetchDocument(ctx, d.cfg.URL, d.dialer)
	}
	return evidence.FetchDocument(ctx, d.hc, d.cfg.URL)
}

func readLimited(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("answer larger than %d bytes", n)
	}
	return b, nil
}

// pollDeployment fetches fresh evidence from d, verifies it and looks its
// measurement up, raising unlogged-measurement, revoked-release-served,
// rebuild-mismatch or evidence-invalid.
func (w *deploymentWatch) pollDeployment(ctx context.Context, d *deployment) error {
	st := DeploymentStatus{Name: d.cfg.Name, URL: d.cfg.URL, Polled: time.Now().UTC()}
	defer func() {
		d.mu.Lock()
		d.last = st
		d.mu.Unlock()
		w.metrics.polls.WithLabelValues(d.cfg.Name, st.Verdict).Inc()
	}()
	// The enclave agent's attestation document, which every client
	// reads (no hardware report spent per poll: its key set's expiry is
	// its freshness); a nonce challenge only from a deployment without
	// an agent.
	var nonce []byte
	ev := DeploymentAlert{Deployment: d.cfg.Name, URL: d.cfg.URL}
	subject := "deployment/" + d.cfg.Name
	fctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	b, err := d.fetchDocument(fctx)
	if errors.Is(err, evidence.ErrNotFound) {
		nonce = make([]byte, 32)
		rand.Read(nonce)
		ev.Nonce = fmt.Sprintf("%x", nonce)
		b, err = evidence.Fetch(fctx, d.hc, d.cfg.URL, nonce)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return err // stopping: no fault of the deployment's
		}
		return w.pollFailed(ctx, d, &st, ev, err)
	}
	if err := w.st.DeploymentAnswered(ctx, d.cfg.Name); err != nil {
		return err
	}
	ev.Bundle, _ = b.Marshal()
	st.KeySet, st.KeySetNotAfter, st.StapledAt = keySetStatus(b)
	for _, g := range b.GPUs {
		gs := GPUStatus{Arch: g.Arch}
		if r, err := spdm.ParseReport(g.Report); err == nil {
			gs.Driver, gs.VBIOS = r.DriverVersion(), r.VBIOSVersion()
		}
		st.GPUs = append(st.GPUs, gs)
	}
	res := d.verifier.Verify(b, nonce)
	// The GPUs (bound by REPORT_DATA, which the hardware checks cover).
	res.Checks = append(res.Checks, d.gpus.Verify(b, nonce)...)
	ev.Result = res
	m := res.Measurement()
	st.Measurement, ev.Measurement = m, m
	if !res.OK() {
		var failed []string
		onlyMode := true
		for _, c := range res.Checks.Failed() {
			failed = append(failed, c.Name)
			onlyMode = onlyMode && c.Name == gpu.CheckMode
		}
		sort.Strings(failed)
		if onlyMode {
			// Evidence that verifies, from GPUs in the wrong mode.
			st.Verdict = AlertGPUMode
			return w.alerts.raise(ctx, w.st, AlertGPUMode, d.cfg.Name+"|"+m+"|gpu-mode", subject,
				fmt.Sprintf("deployment %s's GPUs are not in the mode its policy requires: %s", d.cfg.Name, res.Checks.Failed()), ev)
		}
		// Keyed on the checks that failed, not on the measurement, which
		// evidence that does not verify may name at will.
		st.Verdict = AlertEvidenceInvalid
		return w.alerts.raise(ctx, w.st, AlertEvidenceInvalid, d.cfg.Name+"|"+strings.Join(failed, ","), subject,
			fmt.Sprintf("deployment %s served evidence that does not verify: %s", d.cfg.Name, res.Checks.Failed()), ev)
	}

	// "Logged" is decided from the auditor's own verified copy of the
	// log, never from the log's answer to a lookup: the releases with this
	// measurement among the entries verified here, and the revocations of
	// them in the auditor's replay of the index.
	rels, err := w.st.ReleasesByMeasurement(ctx, d.log.cfg.Origin, m)
	if err != nil {
		return err
	}
	cur, err := w.st.Log(ctx, d.log.cfg.Origin)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// The releases the evidence can run are those whose identity (the
	// platform and every measurement they fix) it matches: for TDX, a
	// release on the same MRTD with other RTMRs is not this deployment's.
	ids, ready := d.log.identities(res)
	if !ready {
		st.Verdict = "pending"
		st.Error = "this auditor's replay of the log's index is not built yet; deciding once it is"
		return nil
	}
	matched := rels[:0:0]
	for _, r := range rels {
		if _, ok := ids[r.Index]; ok {
			matched = append(matched, r)
		}
	}
	rels = matched
	ev.Releases = rels
	for _, r := range rels {
		st.Releases = append(st.Releases, r.Index)
	}
	if len(rels) == 0 {
		if cur == nil || cur.NextEntry < cur.Size {
			// Not verified up to the followed tree yet: say so, alert
			// once it is.
			st.Verdict = "pending"
			if cur != nil {
				st.Error = fmt.Sprintf("measurement %s is in none of the %d entries verified so far (of %d); deciding once caught up", m, cur.NextEntry, cur.Size)
			}
			return nil
		}
		st.Verdict = AlertUnloggedMeasurement
		ev.AbsenceProof = w.absenceProof(ctx, d.log, res)
		key, what := d.cfg.Name+"|"+m, "measurement "+m
		if res.VTPM != nil {
			// The paravisor's digest may well be logged: what is not is
			// this guest's boot on it.
			pd := vtpmPCRsDigest(res.VTPM.PCRs)
			key += "|" + pd
			what = fmt.Sprintf("%s measurement %s with vTPM PCRs %s (SHA-256 over the %d quoted PCRs: %s)", res.Platform, m, vtpmPCRList(res.VTPM.PCRs), len(res.VTPM.PCRs), short(pd, 16))
		}
		return w.alerts.raise(ctx, w.st, AlertUnloggedMeasurement, key, subject,
			fmt.Sprintf("deployment %s serves %s, which no release among the %d entries of %s verified by this auditor has", d.cfg.Name, what, cur.NextEntry, d.log.cfg.Origin), ev)
	}
	// The GPUs must run what one of these releases names.
	gpuBad, err := w.checkGPUs(ctx, d, b, rels, subject, ev)
	if err != nil {
		return err
	}
	// Revoked when every release the evidence can run is revoked, by the
	// policy's one rule (policy.Revokes): a revocation of the release, or
	// one under its identity by a signer who may revoke it (an authority,
	// or its own operator), unless an authority co-signed the release
	// after it.
	allRevoked := true
	var revocations []string
	for _, r := range rels {
		if r.Revoked != "" {
			revocations = append(revocations, "entry "+r.Revoked)
			continue
		}
		me := policy.Release{Index: uint64(r.Index), Signers: strings.Split(r.Signer, ","), Reinstated: r.Authority}
		revoked := false
		for _, rv := range ids[r.Index] {
			if ok, why := d.log.pol.Revokes(me, rv); ok {
				revoked = true
				revocations = append(revocations, why)
				break
			}
		}
		allRevoked = allRevoked && revoked
	}
	st.Verdict = "ok"
	if gpuBad {
		st.Verdict = AlertGPUUnlogged
	}
	if allRevoked {
		st.Verdict = AlertRevokedReleaseServed
		if err := w.alerts.raise(ctx, w.st, AlertRevokedReleaseServed, d.cfg.Name+"|"+m, subject,
			fmt.Sprintf("deployment %s serves measurement %s, revoked (releases %v, revocations %v)", d.cfg.Name, m, st.Releases, revocations), ev); err != nil {
			return err
		}
	}
	for _, r := range rels {
		if r.Rebuild == store.RebuildMismatch {
			st.Verdict = AlertRebuildMismatch
			if err := w.alerts.raise(ctx, w.st, AlertRebuildMismatch, "deployment|"+d.cfg.Name+"|"+m, subject,
				fmt.Sprintf("deployment %s serves measurement %s of release %d, whose rebuild did not match: %s", d.cfg.Name, m, r.Index, r.Detail), ev); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// absenceProof asks the log for its index proof of m (the SNP launch
// digest or TDX MRTD the evidence shows) and returns it if it verifies
// under the log's policy and proves m absent ("" otherwise: the alert then
// rests on this auditor's own copy alone).
func (w *deploymentWatch) absenceProof(ctx context.Context, l *followedLog, res *attest.Result) string {
	t := vindex.KeySNPLaunchDigest
	if res.TDX != nil {
		t = vindex.KeyTDXMRTD
	}
	m := res.Measurement()
	ip, raw, err := l.client.IndexProof(ctx, t, m)
	if err != nil {
		return ""
	}
	v, cp, err := l.pol.VerifyIndexProof(ip)
	if err != nil || cp.Log.Origin != l.cfg.Origin || ip.Type != t || hex.EncodeToString(ip.Digest) != m || len(v.Items) != 0 {
		return ""
	}
	return string(raw)
}

// identities returns the releases among the auditor's replay of the log's
// index that the evidence can run — those filed under an identity its
// measurements match — each with the revocations filed under that
// identity (their entries at hand when this auditor read them).
func (l *followedLog) identities(res *attest.Result) (map[int64][]policy.Revocation, bool) {
	var ids [][]byte
	switch {
	case res.SNP != nil:
		if d, err := hex.DecodeString(res.SNP.LaunchDigest); err == nil && len(d) == 48 {
			ids = append(ids, append([]byte(statement.PlatformSNP+"\x00"), d...))
		}
	case res.TDX != nil:
		var regs [6][]byte
		ok := true
		for i, h := range []string{res.TDX.MRTD, res.TDX.RTMR0, res.TDX.RTMR1, res.TDX.RTMR2, res.TDX.RTMR3, res.TDX.MRConfigID} {
			d, err := hex.DecodeString(h)
			ok = ok && err == nil && len(d) == 48
			regs[i] = d
		}
		if ok {
			ids = vindex.TDXIdentities(regs)
		}
	}
	out := map[int64][]policy.Revocation{}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.index == nil {
		return out, false
	}
	if res.VTPM != nil {
		ids = vtpmIdentities(res, ids, l.vtpmSelections[res.Platform])
	}
	for _, id := range ids {
		items := l.index.b.Map().Get(vindex.Key(vindex.KeyIdentity, id))
		var revs []policy.Revocation
		for _, it := range items {
			if it.Kind == vindex.KindRevocation {
				revs = append(revs, policy.Revocation{Index: it.Index, Envelope: l.revocations[it.Index]})
			}
		}
		for _, it := range items {
			if it.Kind == vindex.KindRelease {
				out[int64(it.Index)] = revs
			}
		}
	}
	return out, true
}

// vtpmIdentities are the identities of a vTPM-measured VM (res, with
// hardware identities hw) under each PCR selection a release of its
// platform names: a release names some PCRs, the VM's quote gives them
// all, so the VM runs the release when its values of the release's PCRs
// make the release's identity. Nil when the quoted PCRs do not decode.
func vtpmIdentities(res *attest.Result, hw [][]byte, sels map[[3]byte]bool) [][]byte {
	pcrs := map[int][]byte{}
	for k, v := range res.VTPM.PCRs {
		i, err := strconv.Atoi(k)
		d, herr := hex.DecodeString(v)
		if err != nil || herr != nil || i < 0 || i > 23 || len(d) != 32 {
			return nil
		}
		pcrs[i] = d
	}
	var out [][]byte
	for sel := range sels {
		for _, h := range hw {
			if id := vindex.VTPMIdentity(res.Platform, h, sel, pcrs); id != nil {
				out = append(out, id)
			}
		}
	}
	return out
}

// vtpmPCRsDigest is SHA-256 over the quoted PCR values in index order
// (hex): what tells one guest boot from another in an alert's key.
func vtpmPCRsDigest(pcrs map[string]string) string {
	h := sha256.New()
	for i := range 24 {
		if v, ok := pcrs[strconv.Itoa(i)]; ok {
			fmt.Fprintf(h, "%d=%s\n", i, v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// vtpmPCRList names the quoted PCRs, e.g. "0-23" or "4,9,11".
func vtpmPCRList(pcrs map[string]string) string {
	var idx []string
	for i := range 24 {
		if _, ok := pcrs[strconv.Itoa(i)]; ok {
			idx = append(idx, strconv.Itoa(i))
		}
	}
	if len(idx) == 24 {
		return "0-23"
	}
	return strings.Join(idx, ",")
}

// checkGPUs raises gpu-unlogged when the deployment's GPUs (or their
// absence) match the gpus section of none of rels.
func (w *deploymentWatch) checkGPUs(ctx context.Context, d *deployment, b *evidence.Bundle, rels []store.Release, subject string, ev DeploymentAlert) (bool, error) {
	d.log.mu.Lock()
	specs := map[int64]*statement.GPUs{}
	for _, r := range rels {
		specs[r.Index] = d.log.gpuSpecs[uint64(r.Index)]
	}
	d.log.mu.Unlock()
	var why string
	for _, r := range rels {
		c := d.gpus.CheckRelease(b, &statement.Release{Version: r.Version, GPUs: specs[r.Index]})
		if c.OK {
			return false, nil
		}
		if why == "" {
			why = fmt.Sprintf("release %d: %s", r.Index, c.Reason)
		}
	}
	return true, w.alerts.raise(ctx, w.st, AlertGPUUnlogged, d.cfg.Name+"|gpu|"+short(why, 160), subject,
		fmt.Sprintf("deployment %s runs GPUs no logged release names (%s)", d.cfg.Name, why), ev)
}
