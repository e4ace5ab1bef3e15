package provenance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/provenance"
	"github.com/attestlog/attestlog/policy/provenance/provenancetest"
)

// A release whose provenance was made by a (virtual) GitHub Actions
// release workflow, checked as admission and `attestlog verify` check it.
func ExampleVerifier_Check() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	// The operator's CI side (here: a virtual Sigstore).
	ss, _ := provenancetest.New()
	ss.WriteTrustedRoot(filepath.Join(dir, "trusted_root.json"))
	id := provenancetest.GitHubWorkflow("https://github.com/acme/enclave", ".github/workflows/release.yml", "refs/tags/v1.4.2", "0123456789abcdef0123456789abcdef01234567")
	subjects, rel := testRelease()
	rel.Provenance, _ = ss.SignProvenance(id, provenancetest.RecipeProvenance(subjects, rel), nil)

	// The verifier's side: a policy file naming the root and the builder.
	os.WriteFile(filepath.Join(dir, "policy.txt"), []byte(`
sigstore-root trusted_root.json
builder acme-release issuer=https://token.actions.githubusercontent.com subject-regex=https://github\.com/acme/enclave/\.github/workflows/release\.yml@refs/tags/v.* repo=https://github.com/acme/enclave ref=refs/tags/v.*
`), 0o644)
	pol, err := policy.Load(filepath.Join(dir, "policy.txt"))
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := provenance.New(&pol.Provenance)
	if err != nil {
		fmt.Println(err)
		return
	}
	checks, who, err := v.Check(rel, subjects, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range checks {
		fmt.Println(c.OK, c.Name)
	}
	fmt.Println("built by", who.Name, "at commit", who.Commit)
	fmt.Println("rejection:", provenance.Rejection(checks))
	// Output:
	// true provenance signature
	// true builder identity
	// true artifact digests in provenance subject
	// true source commit
	// true recipe entry point
	// true builder id and build type
	// built by acme-release at commit 0123456789abcdef0123456789abcdef01234567
	// rejection: <nil>
}
