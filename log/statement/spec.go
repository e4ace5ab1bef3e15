package statement

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestlog/attestlog/internal/yamlx"
)

// ReleaseSpec is the YAML file an operator writes to describe a release;
// `attestlog publish` turns it into a signed release statement.
//
//	version: 1.4.2
//	platform: sev-snp            # or tdx, azure-sev-snp, azure-tdx
//	                             # (azure-*: also measurements.vtpm.pcrs: {"4": 64 hex, …})
//	time: 2026-11-26T12:00:00Z   # optional, default: now
//	measurements:
//	  snp: {launch_digest: 96 hex characters}
//	artifacts:
//	  - {name: bzImage, sha256: 64 hex characters}
//	source: {repo: https://github.com/acme/enclave, commit: 40 hex characters}
//	recipe:
//	  argv: [make, release]
//	  env: {SOURCE_DATE_EPOCH: "0"}
//	  outputs: [out/bzImage]
//	  measure: {kernel: out/bzImage, cmdline: console=ttyS0, vcpus: 2, vcpu_type: EPYC-v4}
//	provenance: build.sigstore.json   # optional, relative to this file
type ReleaseSpec struct {
	Version      string         `yaml:"version"`
	Platform     string         `yaml:"platform"`
	Time         *time.Time     `yaml:"time"`
	Measurements yamlMeasures   `yaml:"measurements"`
	Artifacts    []yamlArtifact `yaml:"artifacts"`
	Source       Source         `yaml:"source"`
	Recipe       yamlRecipe     `yaml:"recipe"`
	Provenance   string         `yaml:"provenance"`
	GPUs         *GPUs          `yaml:"gpus"`
}

type yamlMeasures struct {
	SNP  *SNPMeasurements  `yaml:"snp"`
	TDX  *TDXMeasurements  `yaml:"tdx"`
	VTPM *VTPMMeasurements `yaml:"vtpm"`
}

type yamlArtifact struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256"`
	SHA384 string `yaml:"sha384"`
	SHA512 string `yaml:"sha512"`
}

type yamlRecipe struct {
	Argv    []string          `yaml:"argv"`
	Env     map[string]string `yaml:"env"`
	Outputs []string          `yaml:"outputs"`
	Measure *MeasureInputs    `yaml:"measure"`
}

// LoadReleaseSpec reads a release YAML file and returns the release and its
// artifacts, validated as the log will validate them. A provenance path is
// resolved relative to the file. now is used when the file gives no time.
func LoadReleaseSpec(path string, now time.Time) ([]Subject, *Release, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	subj, r, err := ParseReleaseSpec(b, filepath.Dir(path), now)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return subj, r, nil
}

// ParseReleaseSpec parses release YAML; dir is where a provenance path is
// resolved ("" forbids provenance files).
func ParseReleaseSpec(b []byte, dir string, now time.Time) ([]Subject, *Release, error) {
	if len(b) > MaxEntrySize {
		return nil, nil, fmt.Errorf("release file is %d bytes; the limit is %d", len(b), MaxEntrySize)
	}
	var spec ReleaseSpec
	if err := yamlx.Unmarshal(b, &spec); err != nil {
		return nil, nil, err
	}
	r := &Release{
		Version:      spec.Version,
		Platform:     spec.Platform,
		Measurements: Measurements{SNP: spec.Measurements.SNP, TDX: spec.Measurements.TDX, VTPM: spec.Measurements.VTPM},
		Source:       spec.Source,
		Recipe: Recipe{
			Argv: spec.Recipe.Argv, Env: spec.Recipe.Env,
			Outputs: spec.Recipe.Outputs, Measure: spec.Recipe.Measure,
		},
		GPUs: spec.GPUs,
	}
	t := now
	if spec.Time != nil {
		t = *spec.Time
	}
	r.Time = t.UTC().Truncate(time.Second)
	var subj []Subject
	for _, a := range spec.Artifacts {
		subj = append(subj, Subject{Name: a.Name, Digest: Digest{SHA256: strings.ToLower(a.SHA256), SHA384: strings.ToLower(a.SHA384), SHA512: strings.ToLower(a.SHA512)}})
	}
	if spec.Provenance != "" {
		if dir == "" {
			return nil, nil, errors.New("provenance: file references are not allowed here")
		}
		p := spec.Provenance
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		pb, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("provenance: %v", err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, pb); err != nil {
			return nil, nil, fmt.Errorf("provenance %s: not JSON: %v", p, err)
		}
		r.Provenance = buf.Bytes()
	}
	// Validate exactly as the log will.
	if _, err := EncodeRelease(subj, r); err != nil {
		return nil, nil, specField(err)
	}
	return subj, r, nil
}

// specField rewrites a statement field path into the YAML key the operator
// wrote, so errors point into their file.
func specField(err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	f := fe.Field
	f = strings.Replace(f, "payload.subject", "artifacts", 1)
	f = strings.Replace(f, "payload.predicate.", "", 1)
	f = strings.Replace(f, ".digest.", ".", 1)
	return fmt.Errorf("%s: %s", f, fe.Msg)
}
