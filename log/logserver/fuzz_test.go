package logserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/httpfuzz"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/provenance"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
)

// FuzzAdmitReadBack is the differential test of the log's promise: what
// admission accepts, every reader reads back. For every input the
// admission checks accept (short of appending), the bytes the log would
// store must parse with statement.ParseEntry to the same statement, be
// their own canonical form, fit the entry size limit, and verify for a
// reader with the log's policy as they did at admission.
//
// The seeds are real: key-signed releases, reproductions and
// revocations, and keyless Sigstore bundles (from sigstore-go's virtual
// Sigstore) in each spelling protojson accepts. CI runs it for a bounded
// count (see .ci/run).
func FuzzAdmitReadBack(f *testing.F) {
	ss, err := provenancetest.New()
	if err != nil {
		f.Fatal(err)
	}
	const repo = "https://github.com/acme/enclave"
	commit := strings.Repeat("a", 40)
	ciID := provenancetest.GitHubWorkflow(repo, ".github/workflows/publish.yml", "refs/heads/main", commit)
	tl := newTestLogPolicy(f, nil, func(dir string) string {
		if err := ss.WriteTrustedRoot(filepath.Join(dir, "trusted_root.json")); err != nil {
			f.Fatal(err)
		}
		return "sigstore-root trusted_root.json\n" + ciID.PolicyLine("keyless-operator", "acme-ci") + "\n" + "authority sec " + tl0Authority.Public().String() + "\n"
	})
	ctx := context.Background()
	rel := signedRelease(f, tl.operator, 1)
	res, err := tl.Admit(ctx, rel)
	if err != nil {
		f.Fatal(err)
	}
	if err := tl.waitIndexed(ctx, res.Index); err != nil {
		f.Fatal(err)
	}
	relEntry, _ := statement.ParseEntry(rel)
	stored, _ := relEntry.Entry()
	ref := statement.RefOf(res.Index, stored)
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

	// Every seed is admitted, so that the target checks read-back from
	// the first run rather than only rejections.
	add := func(b []byte) {
		f.Helper()
		if _, err := tl.check(ctx, b); err != nil {
			f.Fatalf("seed %.60q… is not admitted: %v", b, err)
		}
		f.Add(b)
	}
	add(signedRelease(f, tl.operator, 2))
	add(signedRelease(f, tl.operator2, 3))
	rp, _ := statement.EncodeReproduction(ref, &statement.Reproduction{Outcome: statement.OutcomeMatch, Time: now,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(1)}}})
	e, _ := statement.Sign(rp, tl.auditor)
	add(e)
	rv, _ := statement.EncodeRevocation(ref, &statement.Revocation{Reason: "CVE", Time: now})
	e, _ = statement.Sign(rv, tl.operator)
	add(e)
	e, _ = statement.Sign(rv, tl0Authority)
	add(e)
	// An envelope in a non-canonical spelling: indented, keys reordered.
	var ind bytes.Buffer
	if err := json.Indent(&ind, signedRelease(f, tl.operator, 4), "", "  "); err != nil {
		f.Fatal(err)
	}
	add(ind.Bytes())
	kp, _ := statement.EncodeRelease([]statement.Subject{{Name: "a", Digest: statement.Digest{SHA256: strings.Repeat("d1", 32)}}}, &statement.Release{
		Version: "1", Time: now, Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(5)}},
		Source:       statement.Source{Repo: repo, Commit: commit}, Recipe: statement.Recipe{Argv: []string{"make"}},
	})
	kb, err := ss.SignStatement(ciID, kp, &provenancetest.SignOptions{NoTimestamp: true})
	if err != nil {
		f.Fatal(err)
	}
	add(kb)
	for _, r := range []provenancetest.Respelling{provenancetest.SnakeCaseDSSE, provenancetest.UnpaddedPayload, provenancetest.URLSafePayload, provenancetest.Indented} {
		b, err := provenancetest.Reencode(kb, r)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
	pol := tl.Policy()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := tl.check(ctx, body)
		if err != nil {
			return
		}
		entry, err := p.Entry()
		if err != nil {
			t.Fatalf("admitted, but its entry does not encode: %v", err)
		}
		if len(entry) > statement.MaxEntrySize {
			t.Fatalf("admitted an entry of %d bytes, over the limit %d", len(entry), statement.MaxEntrySize)
		}
		q, err := statement.ParseEntry(entry)
		if err != nil {
			t.Fatalf("admitted, but the stored entry does not parse: %v\n%q", err, entry)
		}
		if q.PayloadHash != p.PayloadHash || q.Kind != p.Kind || (q.Envelope == nil) != (p.Envelope == nil) {
			t.Fatalf("the stored entry parses to another statement: %s %x, admitted %s %x", q.Kind, q.PayloadHash, p.Kind, p.PayloadHash)
		}
		again, err := q.Entry()
		if err != nil || !bytes.Equal(again, entry) {
			t.Fatalf("the stored entry is not canonical: re-encoding it gives %d bytes (%v), stored %d", len(again), err, len(entry))
		}
		// A reader with the log's policy verifies it as admission did.
		if p.Envelope == nil {
			r, _, err := provenance.VerifyKeylessEntry(entry, &pol.Provenance, time.Now())
			if err != nil || r.KeylessSigner != p.KeylessSigner {
				t.Fatalf("admitted keyless entry does not verify for a reader: %v (signer %q, admitted %q)", err, r.KeylessSigner, p.KeylessSigner)
			}
			return
		}
		var keys []statement.PublicKey
		for _, ps := range [][]policy.Principal{pol.Operators, pol.Auditors, pol.Authorities} {
			keys = append(keys, policy.Keys(ps)...)
		}
		if _, ok := q.Envelope.VerifiedBy(keys); !ok {
			t.Fatal("admitted envelope does not verify for a reader")
		}
	})
}

// tl0Authority is the revocation authority of the fuzzed log's policy.
var tl0Authority = func() *statement.Signer {
	s, err := statement.GenerateSigner(statement.AlgEd25519)
	if err != nil {
		panic(err)
	}
	return s
}()

// signedRelease is a small release statement signed by s.
func signedRelease(tb testing.TB, s *statement.Signer, n int) []byte {
	tb.Helper()
	p, err := statement.EncodeRelease([]statement.Subject{{Name: "a", Digest: statement.Digest{SHA256: fmt.Sprintf("%064x", n)}}}, &statement.Release{
		Version: fmt.Sprint(n), Time: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurement(n)}},
		Source:       statement.Source{Repo: "https://example.com/e", Commit: strings.Repeat("a", 40)},
		Recipe:       statement.Recipe{Argv: []string{"make"}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	e, err := statement.Sign(p, s)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// FuzzParseConfig: log.yaml is operator input; parsing and validation
// never panic, and a configuration accepted once is accepted again
// (Validate's defaults are a fixed point).
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("origin: x.example/log\nkey: log.key\nstorage: {posix: {dir: tiles}}\n"))
	f.Add([]byte("origin: x.example/log\nkey: k\nlisten: 127.0.0.1:0\nstorage: {mysql: {dsn: 'u:p@tcp(127.0.0.1:3306)/d'}}\ncheckpoint_interval: 1s\n"))
	f.Add([]byte("origin: o\nbatch_max_size: -1\n"))
	f.Add([]byte("colour: red\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "/etc/attestlog")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("an accepted configuration fails Validate again: %v", err)
		}
	})
}

// FuzzHandler: the log's whole HTTP API under any method, path, query and
// body answers without a server error, and only an admitted statement
// (200 from POST /add) changes the tree.
func FuzzHandler(f *testing.F) {
	tl := newTestLog(f, nil)
	ctx := context.Background()
	if _, err := tl.Admit(ctx, signedRelease(f, tl.operator, 1)); err != nil {
		f.Fatal(err)
	}
	if err := tl.waitIndexed(ctx, 0); err != nil {
		f.Fatal(err)
	}
	h := tl.Handler()
	for _, s := range []struct {
		m      byte
		target string
		body   string
	}{
		{0, "/checkpoint", ""}, {1, "/add", "{}"}, {1, "/add", `{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`},
		{0, "/lookup?measurement=ab", ""}, {0, "/proof?index=0", ""}, {0, "/proof?measurement=" + measurement(1), ""},
		{0, "/entry/0", ""}, {0, "/unreadable", ""}, {0, "/tile/0/000", ""}, {0, "/tile/entries/000.p/1", ""}, {3, "/add", ""}, {0, "/metrics", ""},
	} {
		f.Add(s.m, s.target, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, m byte, target string, body []byte) {
		before, err := tl.reader.NextIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w := httpfuzz.Serve(t, h, m, target, body)
		if w == nil {
			return
		}
		after, err := tl.reader.NextIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after != before && !(w.Code == http.StatusOK && strings.HasPrefix(target, "/add")) {
			t.Fatalf("%q answered %d and the log grew from %d to %d", target, w.Code, before, after)
		}
	})
}
