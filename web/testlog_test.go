package web

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
	"github.com/attestlog/attestlog/witness"
)

const (
	testOrigin  = "web.test.attestlog/log"
	testWitness = "web.test.attestlog/witness"
	// hostile is an artifact name (and other free text) a statement may
	// carry: the pages must show it as text.
	hostile = `<script>alert(1)</script>`
	// sourceRepo is the repository of the test releases.
	sourceRepo = "https://github.com/acme/enclave"
)

// testLog is a real log (POSIX storage in a temp dir) whose checkpoints a
// real witness cosigns, populated with releases, a reproduction by an
// auditor key and a revocation.
type testLog struct {
	*logserver.Log
	dir           string
	witnessPolicy []byte
	operator      *statement.Signer
	auditor       *statement.Signer

	// Indexes and values of what populate logged.
	provRelease, plainRelease, hostileRelease, revokedRelease uint64
	reproduction, revocation                                  uint64
	// keylessRelease is signed keylessly by a CI identity and was
	// submitted respelled (dsse_envelope); foreign is an entry another
	// writer put in the tree that is not a statement.
	keylessRelease, foreign                               uint64
	last                                                  uint64 // the newest entry
	keylessSubject                                        string
	provMeasurement, plainMeasurement, hostileMeasurement string
	unloggedMeasurement                                   string
	artifactDigest                                        string
	commit                                                string
}

func measurementN(i int) string { return fmt.Sprintf("%096x", 0xa77e57000+i) }

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newTestLog starts a witness and a log on 127.0.0.1 and publishes the
// test entries.
func newTestLog(t testing.TB) *testLog {
	t.Helper()
	return newTestLogIndexed(t, false)
}

// newTestLogIndexed is newTestLog with the log's index checkpoints on or
// off: they are entries the log appends to itself when it pleases, which
// tests that count entries cannot have.
func newTestLogIndexed(t testing.TB, indexCheckpoints bool) *testLog {
	t.Helper()
	dir := t.TempDir()
	tl := &testLog{dir: dir, commit: strings.Repeat("c0ffee", 6) + "abcd"}
	var err error
	if tl.operator, err = statement.GenerateSigner(statement.AlgEd25519); err != nil {
		t.Fatal(err)
	}
	if tl.auditor, err = statement.GenerateSigner(statement.AlgEd25519); err != nil {
		t.Fatal(err)
	}
	lk, err := keyfile.Generate(keyfile.KindLog, testOrigin, filepath.Join(dir, "log.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	wk, err := keyfile.Generate(keyfile.KindWitness, testWitness, filepath.Join(dir, "witness.key"), "ed25519")
	if err != nil {
		t.Fatal(err)
	}

	// The witness, cosigning the log's checkpoints.
	wcfg, err := witness.ParseConfig([]byte(fmt.Sprintf("key: %s\ndb: %s\nlogs:\n  - origin: %s\n    vkey: %s\n",
		wk.Path, filepath.Join(dir, "witness.db"), testOrigin, lk.Public)))
	if err != nil {
		t.Fatal(err)
	}
	wit, err := witness.Open(t.Context(), wcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	wsrv := httptest.NewServer(wit.Handler())
	t.Cleanup(func() { wsrv.Close(); wit.Close() })

	// Provenance from a virtual Sigstore, accepted by the log's policy.
	ss, err := provenancetest.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.WriteTrustedRoot(filepath.Join(dir, "trusted_root.json")); err != nil {
		t.Fatal(err)
	}
	ci := provenancetest.GitHubWorkflow(sourceRepo, ".github/workflows/release.yml", "refs/tags/v2.0.0", tl.commit)
	ciKeyless := provenancetest.GitHubWorkflow(sourceRepo, ".github/workflows/publish.yml", "refs/heads/main", tl.commit)
	tl.keylessSubject = ciKeyless.Subject
	writeFile(t, filepath.Join(dir, "policy.txt"), fmt.Sprintf("operator acme-ops %s\nauditor independent-auditor %s\nsigstore-root trusted_root.json\n%s\n%s\nprovenance optional\n",
		tl.operator.Public(), tl.auditor.Public(), ci.PolicyLine("builder", "acme-release"), ciKeyless.PolicyLine("keyless-operator", "acme-ci")))
	tl.witnessPolicy = []byte(fmt.Sprintf("witness local-witness %s %s\nquorum local-witness\n", wk.Public, wsrv.URL))
	writeFile(t, filepath.Join(dir, "witnesses.txt"), string(tl.witnessPolicy))
	cfg := &logserver.Config{
		Origin: testOrigin, Listen: "127.0.0.1:0", Key: lk.Path,
		Storage: logserver.Storage{POSIX: &logserver.POSIXStorage{Dir: filepath.Join(dir, "tiles")}},
		Index:   filepath.Join(dir, "index.db"), Policy: filepath.Join(dir, "policy.txt"),
		WitnessPolicy: filepath.Join(dir, "witnesses.txt"),
		BatchMaxAge:   10 * time.Millisecond, CheckpointInterval: 100 * time.Millisecond,
		IndexCheckpoints: &indexCheckpoints,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Another writer's entry, not a statement, first in the tree.
	appendForeign(t, cfg, []byte(`{"written":"by another program"}`))
	tl.foreign = 0
	l, err := logserver.Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tl.Log = l
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	tl.populate(t, ss, ci, ciKeyless)
	return tl
}

// appendForeign appends entries to the log's storage with Tessera alone,
// bypassing admission, as another program writing to the same storage
// would.
func appendForeign(t testing.TB, cfg *logserver.Config, entries ...[]byte) {
	t.Helper()
	// Tessera's background publishing runs until its context ends: end it
	// here, or this writer goes on publishing unwitnessed checkpoints
	// beside the log.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	signer, _, err := keyfile.LoadNoteSigner(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := posix.New(ctx, posix.Config{Path: cfg.Storage.POSIX.Dir})
	if err != nil {
		t.Fatal(err)
	}
	app, shutdown, _, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).WithBatching(1, 10*time.Millisecond).WithCheckpointInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := app.Add(ctx, tessera.NewEntry(e))(); err != nil {
			t.Fatal(err)
		}
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func (tl *testLog) add(t testing.TB, entry []byte) uint64 {
	t.Helper()
	// A reproduction or revocation waits until its release is integrated.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		res, err := tl.Admit(ctx, entry)
		if err == nil {
			return res.Index
		}
		if !errors.Is(err, logserver.ErrRetry) {
			t.Fatalf("Admit = %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Admit = %v until %v", err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (tl *testLog) release(t testing.TB, version, m string, subj []statement.Subject, mutate func(*statement.Release)) ([]byte, *statement.Release) {
	t.Helper()
	rel := &statement.Release{
		Version: version, Time: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: m, GuestPolicy: "0000000000030000"}},
		Source:       statement.Source{Repo: sourceRepo, Commit: tl.commit},
		Recipe: statement.Recipe{
			Argv: []string{"make", "image"}, Env: map[string]string{"SOURCE_DATE_EPOCH": "0"},
			Outputs: []string{"disk.img"},
		},
	}
	if mutate != nil {
		mutate(rel)
	}
	p, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		t.Fatal(err)
	}
	e, err := statement.Sign(p, tl.operator)
	if err != nil {
		t.Fatal(err)
	}
	return e, rel
}

func (tl *testLog) populate(t testing.TB, ss *provenancetest.Sigstore, ci, ciKeyless provenancetest.Identity) {
	t.Helper()
	tl.provMeasurement, tl.plainMeasurement, tl.hostileMeasurement = measurementN(1), measurementN(2), measurementN(3)
	tl.unloggedMeasurement = measurementN(99)
	tl.artifactDigest = strings.Repeat("d1", 32)

	// A release with provenance, then a reproduction of it.
	subj := []statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: tl.artifactDigest}}}
	provEntry, _ := tl.release(t, "2.0.0", tl.provMeasurement, subj, func(rel *statement.Release) {
		b, err := ss.SignProvenance(ci, provenancetest.RecipeProvenance(subj, rel), nil)
		if err != nil {
			t.Fatal(err)
		}
		rel.Provenance = b
	})
	tl.provRelease = tl.add(t, provEntry)
	rp, err := statement.EncodeReproduction(statement.RefOf(tl.provRelease, provEntry), &statement.Reproduction{
		Outcome: statement.OutcomeMatch, Time: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC),
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: tl.provMeasurement}},
		Detail:       "rebuilt in bubblewrap",
	})
	if err != nil {
		t.Fatal(err)
	}
	re, err := statement.Sign(rp, tl.auditor)
	if err != nil {
		t.Fatal(err)
	}
	tl.reproduction = tl.add(t, re)

	// A release without provenance.
	plain, _ := tl.release(t, "1.9.0", tl.plainMeasurement,
		[]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("e2", 32)}}}, nil)
	tl.plainRelease = tl.add(t, plain)

	// A hostile release: markup and a bidirectional override in artifact
	// names and recipe, markup in the repository URL.
	hostileEntry, _ := tl.release(t, "6.6.6", tl.hostileMeasurement, []statement.Subject{
		{Name: hostile, Digest: statement.Digest{SHA256: strings.Repeat("f3", 32)}},
		{Name: "innocent\u202egpj.exe", Digest: statement.Digest{SHA256: strings.Repeat("f4", 32)}},
	}, func(rel *statement.Release) {
		rel.Source.Repo = `https://evil.example/"><script>alert(2)</script>`
		rel.Recipe.Argv = []string{"sh", "-c", `<img src=x onerror=alert(3)>`}
		rel.Recipe.Outputs = nil
	})
	tl.hostileRelease = tl.add(t, hostileEntry)

	// A revoked release.
	old, _ := tl.release(t, "1.0.0", measurementN(4),
		[]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("a5", 32)}}}, nil)
	tl.revokedRelease = tl.add(t, old)
	rv, err := statement.EncodeRevocation(statement.RefOf(tl.revokedRelease, old), &statement.Revocation{
		Reason: "CVE-2026-0001: debug console left enabled", Advisory: "https://example.com/advisories/1",
		Time: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	rve, err := statement.Sign(rv, tl.operator)
	if err != nil {
		t.Fatal(err)
	}
	tl.revocation = tl.add(t, rve)

	// A keyless release, submitted respelled as sigstore-go's parser
	// allows (the log stores the canonical bundle).
	kp, err := statement.EncodeRelease([]statement.Subject{{Name: "disk.img", Digest: statement.Digest{SHA256: strings.Repeat("b6", 32)}}}, &statement.Release{
		Version: "3.0.0", Time: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Platform: statement.PlatformSNP,
		Measurements: statement.Measurements{SNP: &statement.SNPMeasurements{LaunchDigest: measurementN(5)}},
		Source:       statement.Source{Repo: sourceRepo, Commit: tl.commit},
		Recipe:       statement.Recipe{Argv: []string{"make", "image"}, Outputs: []string{"disk.img"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	kb, err := ss.SignStatement(ciKeyless, kp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kb, err = provenancetest.Reencode(kb, provenancetest.SnakeCaseDSSE); err != nil {
		t.Fatal(err)
	}
	tl.keylessRelease = tl.add(t, kb)
	last := tl.keylessRelease
	tl.last = last

	// Wait until a witnessed checkpoint covers everything and the index
	// has it all.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		_, perr := tl.Proof(ctx, last)
		_, derr := tl.Describe(ctx, last)
		if perr == nil && derr == nil {
			return
		}
		if !errors.Is(perr, logserver.ErrNotWitnessed) && !errors.Is(perr, logserver.ErrNotFound) && perr != nil {
			t.Fatalf("Proof = %v", perr)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the test log did not publish a witnessed checkpoint covering entry %d: %v, %v", last, perr, derr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
