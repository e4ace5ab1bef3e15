package statement

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testRelease() ([]Subject, *Release) {
	subj := []Subject{
		{Name: "OVMF.fd", Digest: Digest{SHA256: strings.Repeat("ab", 32)}},
		{Name: "bzImage", Digest: Digest{SHA384: strings.Repeat("cd", 48)}},
	}
	r := &Release{
		Version:  "1.2.3",
		Time:     time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Platform: PlatformSNP,
		Measurements: Measurements{SNP: &SNPMeasurements{
			LaunchDigest: strings.Repeat("01", 48), GuestPolicy: "0000000000030000",
		}},
		Source: Source{Repo: "https://github.com/acme/enclave", Commit: strings.Repeat("a", 40)},
		Recipe: Recipe{
			Argv: []string{"make", "release"}, Env: map[string]string{"SOURCE_DATE_EPOCH": "0"},
			Outputs: []string{"out/OVMF.fd", "out/bzImage"},
			Measure: &MeasureInputs{Firmware: "out/OVMF.fd", Kernel: "out/bzImage", VCPUs: 2, VCPUType: "EPYC-v4"},
		},
	}
	return subj, r
}

func TestSignParseRoundTrip(t *testing.T) {
	for _, alg := range []string{AlgEd25519, AlgECDSAP256} {
		s, err := GenerateSigner(alg)
		if err != nil {
			t.Fatal(err)
		}
		subj, rel := testRelease()
		payload, err := EncodeRelease(subj, rel)
		if err != nil {
			t.Fatalf("%s: EncodeRelease = %v", alg, err)
		}
		entry, err := Sign(payload, s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(entry)
		if err != nil {
			t.Fatalf("%s: Parse(Sign(x)) = %v", alg, err)
		}
		if p.Kind != KindRelease || p.Release.Measurements.Primary() != rel.Measurements.SNP.LaunchDigest {
			t.Errorf("%s: parsed kind %s measurement %s", alg, p.Kind, p.Release.Measurements.Primary())
		}
		k, ok := p.Envelope.VerifiedBy([]PublicKey{s.Public()})
		if !ok || k.ID() != s.Public().ID() {
			t.Errorf("%s: VerifiedBy(own key) = %v", alg, ok)
		}
		other, _ := GenerateSigner(alg)
		if _, ok := p.Envelope.VerifiedBy([]PublicKey{other.Public()}); ok {
			t.Errorf("%s: VerifiedBy(other key) = true", alg)
		}
		// Canonical: the same statement encodes to the same payload, and a
		// second signature (random for ECDSA) keeps the payload hash.
		payload2, _ := EncodeRelease(subj, rel)
		entry2, _ := Sign(payload2, s)
		p2, err := Parse(entry2)
		if err != nil {
			t.Fatal(err)
		}
		if p2.PayloadHash != p.PayloadHash {
			t.Errorf("%s: payload hash differs between two encodings of one statement", alg)
		}
		// The public key text form round-trips.
		pk, err := ParsePublicKey(s.Public().String())
		if err != nil || pk.ID() != s.Public().ID() {
			t.Errorf("%s: ParsePublicKey(String()) = %v", alg, err)
		}
		// The private key file form round-trips.
		pem, _ := s.MarshalPrivateKey()
		s2, err := ParsePrivateKey(pem)
		if err != nil || s2.Public().ID() != s.Public().ID() {
			t.Errorf("%s: ParsePrivateKey(MarshalPrivateKey()) = %v", alg, err)
		}
	}
}

func TestTamperedSignature(t *testing.T) {
	s, _ := GenerateSigner(AlgEd25519)
	subj, rel := testRelease()
	payload, _ := EncodeRelease(subj, rel)
	env, _ := SignEnvelope(payload, s)
	env.Signatures[0].Sig[0] ^= 1
	if _, ok := env.VerifiedBy([]PublicKey{s.Public()}); ok {
		t.Error("VerifiedBy accepted a flipped signature bit")
	}
}

// mutate returns a signed entry whose payload JSON was changed by f after
// canonical encoding (so it bypasses EncodeRelease's checks).
func mutate(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	subj, rel := testRelease()
	payload, err := encode(subj, PredicateRelease, rel)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	// Re-encode in the field order a struct would use is not possible
	// with a map; encode via the Statement type for canonical order.
	pred, _ := marshal(m["predicate"])
	subjB, _ := json.Marshal(m["subject"])
	var subjects []Subject
	json.Unmarshal(subjB, &subjects)
	st := Statement{Type: StatementType, Subject: subjects, PredicateType: m["predicateType"].(string), Predicate: pred}
	b, _ := marshal(st)
	s, _ := GenerateSigner(AlgEd25519)
	e, _ := Sign(b, s)
	return e
}

func pred(m map[string]any) map[string]any { return m["predicate"].(map[string]any) }

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mut   func(m map[string]any)
		field string
	}{
		{"unknown field", func(m map[string]any) { pred(m)["colour"] = "red" }, "predicate.colour: unknown field"},
		{"bad hex", func(m map[string]any) {
			pred(m)["measurements"].(map[string]any)["snp"].(map[string]any)["launch_digest"] = strings.Repeat("zz", 48)
		}, "launch_digest"},
		{"short digest", func(m map[string]any) {
			pred(m)["measurements"].(map[string]any)["snp"].(map[string]any)["launch_digest"] = strings.Repeat("01", 32)
		}, "launch_digest: must be 96"},
		{"uppercase hex", func(m map[string]any) {
			pred(m)["measurements"].(map[string]any)["snp"].(map[string]any)["launch_digest"] = strings.Repeat("AB", 48)
		}, "lowercase"},
		{"bad platform", func(m map[string]any) { pred(m)["platform"] = "sgx" }, "platform"},
		{"tdx for snp", func(m map[string]any) {
			pred(m)["measurements"].(map[string]any)["tdx"] = map[string]any{"mrtd": strings.Repeat("01", 48)}
		}, "measurements.tdx"},
		{"artifact digest length", func(m map[string]any) {
			m["subject"].([]any)[0].(map[string]any)["digest"] = map[string]any{"sha256": "abcd"}
		}, "subject[0].digest.sha256"},
		{"no commit", func(m map[string]any) { pred(m)["source"].(map[string]any)["commit"] = "main" }, "source.commit"},
		{"output outside", func(m map[string]any) {
			pred(m)["recipe"].(map[string]any)["outputs"] = []any{"../etc/passwd"}
		}, "outputs[0]"},
		{"output is ..", func(m map[string]any) {
			pred(m)["recipe"].(map[string]any)["outputs"] = []any{"out/.."}
		}, "outputs[0]: must be a relative path"},
		{"output absolute", func(m map[string]any) {
			pred(m)["recipe"].(map[string]any)["outputs"] = []any{"ok", "/etc/passwd"}
		}, "outputs[1]: must be a relative path"},
		{"env NUL", func(m map[string]any) {
			pred(m)["recipe"].(map[string]any)["env"] = map[string]any{"X": "a\x00b"}
		}, "recipe.env.X: contains a NUL"},
		{"bad memory", func(m map[string]any) {
			pred(m)["recipe"].(map[string]any)["measure"].(map[string]any)["memory"] = "lots"
		}, "measure.memory: must be a size"},
		{"measure not an output", func(m map[string]any) {
			pred(m)["recipe"].(map[string]any)["outputs"] = []any{"out/bzImage"}
		}, "measure.firmware"},
		{"wrong type", func(m map[string]any) { pred(m)["version"] = 7 }, "version"},
		{"non-UTC time", func(m map[string]any) { pred(m)["time"] = "2026-11-26T13:00:00+01:00" }, "time"},
	} {
		_, err := Parse(mutate(t, tc.mut))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Parse = %q, want a message naming %q", tc.name, err, tc.field)
		}
	}
}

// The predicate is decoded in the same pass as the statement when
// predicateType precedes it (canonical order); in the other order it is
// still decoded strictly, so errors name the same fields, and the statement
// is then refused as non-canonical.
func TestParsePredicateOrder(t *testing.T) {
	subj, rel := testRelease()
	payload, err := EncodeRelease(subj, rel)
	if err != nil {
		t.Fatal(err)
	}
	head, predicate, ok := bytes.Cut(payload, []byte(`,"predicate":`))
	if !ok {
		t.Fatalf("no predicate in %s", payload)
	}
	head, predType, _ := bytes.Cut(head, []byte(`,"predicateType":`))
	predicate = predicate[:len(predicate)-1]
	swapped := fmt.Appendf(nil, `%s,"predicate":%s,"predicateType":%s}`, head, predicate, predType)
	if _, err := ParseStatement(swapped); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "canonical") {
		t.Errorf("predicate before predicateType: %v, want a non-canonical error", err)
	}
	bad := bytes.Replace(swapped, []byte(`"version":`), []byte(`"colour":"red","version":`), 1)
	if _, err := ParseStatement(bad); err == nil || !strings.Contains(err.Error(), "payload.predicate.colour: unknown field") {
		t.Errorf("unknown predicate field before predicateType: %v", err)
	}
	if _, err := ParseStatement(fmt.Appendf(nil, `%s,"predicateType":%s}`, head, predType)); err == nil || !strings.Contains(err.Error(), "payload.predicate: missing") {
		t.Errorf("no predicate: %v", err)
	}
	if _, err := ParseStatement(payload); err != nil {
		t.Errorf("canonical payload: %v", err)
	}
}

func TestParseRejectsEnvelopes(t *testing.T) {
	s, _ := GenerateSigner(AlgEd25519)
	subj, rel := testRelease()
	payload, _ := EncodeRelease(subj, rel)
	good, _ := Sign(payload, s)
	var pretty bytes.Buffer
	json.Indent(&pretty, payload, "", " ")
	nonCanon, _ := Sign(pretty.Bytes(), s)
	for name, in := range map[string][]byte{
		"truncated":     good[:len(good)/2],
		"garbage":       []byte("not json at all"),
		"empty":         {},
		"trailing":      append(append([]byte{}, good...), []byte(" {}")...),
		"oversize":      append(good, bytes.Repeat([]byte(" "), MaxEntrySize)...),
		"non-canonical": nonCanon,
		"no signatures": []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`),
		"payload type":  bytes.Replace(good, []byte("vnd.in-toto+json"), []byte("vnd.other+json"), 1),
		"unknown field": bytes.Replace(good, []byte(`{"payloadType"`), []byte(`{"x":1,"payloadType"`), 1),
	} {
		if _, err := Parse(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Parse(good); err != nil {
		t.Errorf("Parse(good) = %v", err)
	}
}

func TestReferences(t *testing.T) {
	ref := RefOf(7, []byte("entry"))
	rp, err := EncodeReproduction(ref, &Reproduction{
		Outcome: OutcomeMatch, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Measurements: Measurements{TDX: &TDXMeasurements{MRTD: strings.Repeat("02", 48)}},
	})
	if err != nil {
		t.Fatalf("EncodeReproduction = %v", err)
	}
	p, err := ParseStatement(rp)
	if err != nil || p.Ref != ref || p.Kind != KindReproduction {
		t.Fatalf("ParseStatement(reproduction) = %+v, %v; want ref %+v", p, err, ref)
	}
	rv, err := EncodeRevocation(ref, &Revocation{Reason: "CVE-2026-0001", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	p, err = ParseStatement(rv)
	if err != nil || p.Ref != ref || p.Kind != KindRevocation {
		t.Fatalf("ParseStatement(revocation) = %+v, %v", p, err)
	}
	if _, err := EncodeRevocation(ref, &Revocation{Time: time.Now().UTC().Truncate(time.Second)}); err == nil {
		t.Error("EncodeRevocation without a reason succeeded")
	}
}

func TestReleaseSpec(t *testing.T) {
	y := `version: 2.0.0
platform: tdx
time: 2026-11-26T12:00:00Z
measurements:
  tdx: {mrtd: ` + strings.Repeat("ab", 48) + `, rtmr0: ` + strings.Repeat("cd", 48) + `}
artifacts:
  - {name: disk.img, sha256: ` + strings.Repeat("EF", 32) + `}
source: {repo: "file:///tmp/repo", commit: ` + strings.Repeat("1", 40) + `}
recipe:
  argv: [./build.sh]
  outputs: [disk.img]
`
	subj, r, err := ParseReleaseSpec([]byte(y), "", time.Now())
	if err != nil {
		t.Fatalf("ParseReleaseSpec = %v", err)
	}
	if r.Measurements.TDX.RTMR0 != strings.Repeat("cd", 48) || subj[0].Digest.SHA256 != strings.Repeat("ef", 32) {
		t.Errorf("parsed %+v %+v", r.Measurements.TDX, subj)
	}
	if _, r, err := ParseReleaseSpec([]byte(strings.Replace(y, "rtmr0: ", "firmware_endorsement: google, rtmr0: ", 1)), "", time.Now()); err != nil || r.Measurements.TDX.FirmwareEndorsement != FirmwareEndorsedByGoogle {
		t.Errorf("firmware_endorsement: google = %v, %+v", err, r)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"unknown key":  {strings.Replace(y, "version:", "colour: red\nversion:", 1), "colour"},
		"bad mrtd":     {strings.Replace(y, "mrtd: ab", "mrtd: zz", 1), "measurements.tdx.mrtd"},
		"no artifacts": {strings.Replace(y, "  - {name: disk.img", "  # - {name: disk.img", 1), "artifacts"},
		"provenance":   {y + "provenance: x.json\n", "provenance"},
		"endorser":     {strings.Replace(y, "rtmr0: ", "firmware_endorsement: amazon, rtmr0: ", 1), `measurements.tdx.firmware_endorsement: must be "google" or absent`},
	} {
		_, _, err := ParseReleaseSpec([]byte(tc.in), "", time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseReleaseSpec(%s) = %v, want an error naming %q", name, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	s, _ := GenerateSigner(AlgEd25519)
	good, _ := Sign(minimalPayload(), s) // small: ~850 bytes
	f.Add(good)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to a payload that parses to the same
		// statement.
		if _, err := ParseStatement(p.Envelope.Payload); err != nil {
			t.Fatalf("accepted payload does not re-parse: %v", err)
		}
		e, err := p.Entry()
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(e)
		if err != nil || q.PayloadHash != p.PayloadHash {
			t.Fatalf("canonical entry does not re-parse to the same statement: %v", err)
		}
	})
}

func FuzzParseReleaseSpec(f *testing.F) {
	f.Add([]byte("version: 1\nplatform: sev-snp\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		subj, r, err := ParseReleaseSpec(b, "", time.Unix(0, 0))
		if err != nil {
			return
		}
		enc, err := EncodeRelease(subj, r)
		if err != nil {
			t.Fatalf("accepted spec does not encode: %v", err)
		}
		// What the publisher signs, the log accepts.
		if _, err := ParseStatement(enc); err != nil {
			t.Fatalf("encoded release does not parse: %v", err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	s, _ := GenerateSigner(AlgEd25519)
	subj, rel := testRelease()
	for i := range 50 {
		subj = append(subj, Subject{Name: fmt.Sprintf("layer-%03d.tar", i), Digest: Digest{SHA256: strings.Repeat("ab", 32)}})
	}
	payload, _ := EncodeRelease(subj, rel)
	e, _ := Sign(payload, s)
	b.SetBytes(int64(len(e)))
	for b.Loop() {
		if _, err := Parse(e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReleaseRefusesLoaderEnv: a release whose recipe sets what changes
// how the auditor's tools load is refused when encoded (publish) and when
// parsed (admission), naming the variable.
func TestReleaseRefusesLoaderEnv(t *testing.T) {
	s, err := GenerateSigner(AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"LD_PRELOAD", "LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES", "PATH"} {
		subj, rel := testRelease()
		rel.Recipe.Env[k] = "./x.so"
		if _, err := EncodeRelease(subj, rel); err == nil || !strings.Contains(err.Error(), "recipe.env."+k) {
			t.Errorf("EncodeRelease with env %s = %v, want an error naming recipe.env.%s", k, err, k)
		}
		// Signed by hand, bypassing the encoder's check: Parse refuses.
		_, good := testRelease()
		payload, err := EncodeRelease(subj, good)
		if err != nil {
			t.Fatal(err)
		}
		forged := bytes.Replace(payload, []byte(`"SOURCE_DATE_EPOCH":"0"`), []byte(`"`+k+`":"./x.so","SOURCE_DATE_EPOCH":"0"`), 1)
		if bytes.Equal(forged, payload) {
			t.Fatalf("the env is not where the test expects it in %s", payload)
		}
		entry, err := Sign(forged, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(entry); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("Parse of a release with env %s = %v, want an error naming it", k, err)
		}
	}
}

// FuzzParsePublicKey: keys come from policy files and key files. What
// parses prints to text that parses to the same key.
func FuzzParsePublicKey(f *testing.F) {
	s, _ := GenerateSigner(AlgEd25519)
	f.Add(s.Public().String())
	e, _ := GenerateSigner(AlgECDSAP256)
	f.Add(e.Public().String())
	f.Add("ed25519:AAAA")
	f.Add("rsa:xyz")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		k2, err := ParsePublicKey(k.String())
		if err != nil || k2.ID() != k.ID() {
			t.Fatalf("%q parses, but its text %q does not parse to the same key: %v", s, k.String(), err)
		}
	})
}

// FuzzParsePrivateKey: a private key file may be corrupt. What parses
// signs what its public key verifies.
func FuzzParsePrivateKey(f *testing.F) {
	s, _ := GenerateSigner(AlgEd25519)
	b, _ := s.MarshalPrivateKey()
	f.Add(b)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParsePrivateKey(b)
		if err != nil {
			return
		}
		sig, err := s.Sign([]byte("m"))
		if err != nil || !s.Public().Verify([]byte("m"), sig) {
			t.Fatalf("an accepted private key does not sign verifiably: %v", err)
		}
	})
}

// FuzzParseEntryKeyless drives ParseEntry's Sigstore-bundle branch: what
// it accepts is stored as its canonical encoding, which parses back to
// the same statement and is its own canonical encoding. The fuzzer
// mutates the DSSE payload (the statement) and picks how the bundle
// around it is spelled, so that its inputs stay small (a few hundred
// bytes) and its mutations land in the statement, not in base64.
func FuzzParseEntryKeyless(f *testing.F) {
	f.Add(minimalPayload(), uint8(0), "")
	f.Add(minimalPayload(), uint8(1), `,"verificationMaterial":{}`)
	f.Add([]byte(`{}`), uint8(2), "")
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), uint8(3), `,"messageSignature":{}`)
	f.Fuzz(func(t *testing.T, payload []byte, spelling uint8, extra string) {
		if len(payload) > 4096 || len(extra) > 256 {
			return
		}
		enc := base64.StdEncoding.EncodeToString(payload)
		key := "dsseEnvelope"
		switch spelling % 4 {
		case 1:
			key = "dsse_envelope"
		case 2:
			enc = strings.TrimRight(enc, "=")
		case 3:
			enc = base64.URLEncoding.EncodeToString(payload)
		}
		b := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","` + key + `":{"payload":"` + enc +
			`","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}` + extra + `}`)
		p, err := ParseEntry(b)
		if err != nil || p.Envelope != nil {
			return
		}
		e, err := p.Entry()
		if err != nil || len(e) > MaxEntrySize {
			t.Fatalf("accepted bundle's entry: %d bytes, %v", len(e), err)
		}
		q, err := ParseEntry(e)
		if err != nil {
			t.Fatalf("the canonical bundle does not parse: %v\n%s", err, e)
		}
		if q.PayloadHash != p.PayloadHash || q.Kind != p.Kind || !bytes.Equal(q.Bundle, e) {
			t.Fatalf("the canonical bundle is not stable or parses to another statement:\n%s\n%s", e, q.Bundle)
		}
	})
}

// minimalPayload is a small valid release statement (533 bytes).
func minimalPayload() []byte {
	r := &Release{Version: "1", Platform: PlatformSNP, Time: time.Unix(0, 0).UTC(),
		Measurements: Measurements{SNP: &SNPMeasurements{LaunchDigest: strings.Repeat("0", 96)}},
		Source:       Source{Repo: "https://e/r", Commit: strings.Repeat("0", 40)}, Recipe: Recipe{Argv: []string{"m"}}}
	p, err := EncodeRelease([]Subject{{Name: "a", Digest: Digest{SHA256: strings.Repeat("0", 64)}}}, r)
	if err != nil {
		panic(err)
	}
	return p
}

// TestReleaseSpecErrorsNamePathAndLine: every release-file error names the
// YAML path and line in the writer's words; no Go type names.
func TestReleaseSpecErrorsNamePathAndLine(t *testing.T) {
	base := "version: 1.0.0\nplatform: sev-snp\ntime: 2026-11-26T12:00:00Z\nmeasurements:\n  snp: {launch_digest: " + strings.Repeat("ab", 48) + "}\n" +
		"artifacts:\n  - {name: disk.img, sha256: " + strings.Repeat("cd", 32) + "}\nsource: {repo: https://example.com/r, commit: " + strings.Repeat("a", 40) + "}\n" +
		"recipe:\n  argv: [make]\n  measure:\n    vcpus: 2\n"
	if _, _, err := ParseReleaseSpec([]byte(base), "", time.Now()); err != nil {
		t.Fatalf("the base release does not parse: %v", err)
	}
	for _, tc := range []struct{ edit, want string }{
		{base + "colour: red\n", "colour (line 13): unknown field"},
		{base + "    vcpu: 4\n", "recipe.measure.vcpu (line 13): unknown field; did you mean vcpus?"},
		{strings.Replace(base, "vcpus: 2", "vcpus: four", 1), `recipe.measure.vcpus (line 12): "four" is not a whole number`},
		{strings.Replace(base, "time: 2026-11-26T12:00:00Z", "time: yesterday", 1), `time (line 3): "yesterday" is not a time in RFC 3339 form`},
	} {
		_, _, err := ParseReleaseSpec([]byte(tc.edit), "", time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error = %v, want %q", err, tc.want)
			continue
		}
		for _, bad := range []string{"statement.", "ReleaseSpec", "MeasureInputs", "!!str", "2006-01-02"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("error %q has %q", err, bad)
			}
		}
	}
}

// TestSourceRepoSchemes: source.repo is one of the schemes the message
// lists, with a host (or, for file, an absolute path) and no credentials.
func TestSourceRepoSchemes(t *testing.T) {
	subj, rel := testRelease()
	for repo, ok := range map[string]bool{
		"https://github.com/acme/enclave": true, "git+https://gitlab.com/a/b.git": true, "file:///srv/git/enclave": true,
		"javascript:alert(1)": false, "http://example.com/r": false, "ftp://example.com/r": false, "ssh://git@host/r": false,
		"https:///nohost": false, "https://user:pw@example.com/r": false, "file://host/path": false, "file:relative": false,
		"https:opaque": false, "data:text/html,x": false, "": false,
	} {
		r := *rel
		r.Source.Repo = repo
		_, err := EncodeRelease(subj, &r)
		if (err == nil) != ok {
			t.Errorf("source.repo %q: %v, want accepted %v", repo, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "payload.predicate.source.repo") {
			t.Errorf("source.repo %q: error %q does not name the field", repo, err)
		}
	}
}

// TestSHA512Artifacts: an artifact may carry sha256, sha384 and/or sha512
// (npm's provenance names packages by sha512 only).
func TestSHA512Artifacts(t *testing.T) {
	_, rel := testRelease()
	for d, ok := range map[Digest]bool{
		{SHA512: strings.Repeat("ab", 64)}:                                   true,
		{SHA256: strings.Repeat("ab", 32), SHA512: strings.Repeat("cd", 64)}: true,
		{SHA512: strings.Repeat("ab", 48)}:                                   false,
		{SHA512: strings.Repeat("AB", 64)}:                                   false,
	} {
		_, err := EncodeRelease([]Subject{{Name: "pkg.tgz", Digest: d}}, rel)
		if (err == nil) != ok {
			t.Errorf("digest %+v: %v, want accepted %v", d, err, ok)
		}
	}
	y := "version: 1\nplatform: sev-snp\nmeasurements: {snp: {launch_digest: " + strings.Repeat("ab", 48) + "}}\nartifacts:\n  - {name: pkg.tgz, sha512: " + strings.Repeat("EF", 64) + "}\n" +
		"source: {repo: https://example.com/r, commit: " + strings.Repeat("a", 40) + "}\nrecipe: {argv: [make]}\n"
	subj, _, err := ParseReleaseSpec([]byte(y), "", time.Now())
	if err != nil || len(subj) != 1 || subj[0].Digest.SHA512 != strings.Repeat("ef", 64) {
		t.Errorf("release file with a sha512 artifact: %+v, %v", subj, err)
	}
}

// TestMeasureInputsAsMeasureTakesThem: recipe.measure values are checked
// with the parsers 'attestlog measure' and the auditor use, so a release
// nobody can measure is refused at publish, naming the field.
func TestMeasureInputsAsMeasureTakesThem(t *testing.T) {
	subj, rel := testRelease()
	for _, tc := range []struct {
		set  func(m *MeasureInputs)
		want string
	}{
		{func(m *MeasureInputs) { m.VCPUType = "EPYC-Milano" }, "recipe.measure.vcpu_type: unknown vCPU type \"EPYC-Milano\" (want one of"},
		{func(m *MeasureInputs) { m.VMMType = "vmware" }, "recipe.measure.vmm_type: unknown VMM type"},
		{func(m *MeasureInputs) { m.GuestFeatures = "1" }, "recipe.measure.guest_features: guest features \"1\": want a 0x-prefixed hex number"},
		{func(m *MeasureInputs) { m.GuestFeatures = "0x" + strings.Repeat("f", 17) }, "recipe.measure.guest_features"},
		{func(m *MeasureInputs) { m.Memory = "0" }, "recipe.measure.memory"},
		{func(m *MeasureInputs) { m.Memory = "99999T" }, "recipe.measure.memory"},
	} {
		r := *rel
		m := MeasureInputs{}
		if rel.Recipe.Measure != nil {
			m = *rel.Recipe.Measure
		}
		tc.set(&m)
		r.Recipe.Measure = &m
		_, err := EncodeRelease(subj, &r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", m, err, tc.want)
		}
	}
	r := *rel
	r.Recipe.Measure = &MeasureInputs{VCPUType: "EPYC-Milan", VMMType: "QEMU", GuestFeatures: "0x1", Memory: "4G"}
	if _, err := EncodeRelease(subj, &r); err != nil {
		t.Errorf("valid measure inputs refused: %v", err)
	}
}
