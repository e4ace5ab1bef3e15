package up

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/testenv"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy"
)

// TestPreparePlatforms: for every --platform, Prepare writes a release of
// that platform that the log would admit (it validates), naming what the
// platform measures, and a client policy that parses, names the
// platform's roots and lines, and allows the release's platform. Switching
// platforms in the same directory rewrites the generated policy and keeps
// each platform's release apart; an unknown platform is refused.
func TestPreparePlatforms(t *testing.T) {
	testenv.LookPath(t, "git") // the demo repository, whose build the SEV-SNP releases measure
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		platform string
		release  string   // its platform
		yaml     []string // in the release
		pol      []string // in the client policy
	}{
		{"sev-snp", "sev-snp", []string{"launch_digest:", "measure:"}, []string{"trust-root sev-snp demo-snp-root.pem"}},
		{"aws", "sev-snp", []string{"measure:"}, []string{"snp-allow-provisional-firmware"}},
		{"turin", "sev-snp", []string{"measure:"}, []string{"snp-min-tcb turin fmc=1"}},
		{"gcp-sev-snp", "sev-snp", []string{"firmware_endorsement: google"}, []string{"trust-root gce-tcb demo-gce-root.pem"}},
		{"azure-sev-snp", "azure-sev-snp", []string{"vtpm:", `"11":`}, []string{"platform azure-sev-snp"}},
		{"tdx", "tdx", []string{"mrtd:"}, []string{"trust-root tdx demo-tdx-root.pem"}},
		{"tdx15", "tdx", []string{"mrtd:"}, []string{"trust-root tdx demo-tdx-root.pem"}},
		{"gcp-tdx", "tdx", []string{"rtmr2:", "firmware_endorsement: google"}, []string{"trust-root tdx demo-tdx-root.pem", "trust-root gce-tcb demo-gce-root.pem"}},
		{"azure-tdx", "azure-tdx", []string{"mrtd:", "vtpm:"}, []string{"platform azure-tdx", "trust-root tdx demo-tdx-root.pem"}},
	} {
		info, notes, err := Prepare(Config{Dir: dir, Listener: ln, Platform: tc.platform})
		if err != nil || len(notes) != 0 {
			t.Fatalf("%s: Prepare: %v, notes %q", tc.platform, err, notes)
		}
		if info.Demo.Platform != tc.platform || filepath.Base(info.Demo.TrustRoot) != map[bool]string{true: "demo-tdx-root.pem", false: "demo-snp-root.pem"}[strings.Contains(tc.release, "tdx")] {
			t.Errorf("%s: demo %+v", tc.platform, info.Demo)
		}
		y, err := os.ReadFile(info.ExampleRelease)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.yaml {
			if !strings.Contains(string(y), w) {
				t.Errorf("%s: the release lacks %q:\n%s", tc.platform, w, y)
			}
		}
		if _, rel, err := statement.LoadReleaseSpec(info.ExampleRelease, time.Now()); err != nil || rel.Platform != tc.release {
			t.Errorf("%s: release %s: %v, platform %q want %q", tc.platform, info.ExampleRelease, err, rel.Platform, tc.release)
		}
		p, err := policy.Load(info.ClientPolicy)
		if err != nil {
			t.Fatalf("%s: client policy: %v", tc.platform, err)
		}
		if !p.Attestation.AllowsPlatform(tc.release) {
			t.Errorf("%s: the client policy does not allow %s", tc.platform, tc.release)
		}
		b, _ := os.ReadFile(info.ClientPolicy)
		for _, w := range tc.pol {
			if !strings.Contains(string(b), "\n"+w) {
				t.Errorf("%s: the client policy lacks %q:\n%s", tc.platform, w, b)
			}
		}
	}
	if _, _, err := Prepare(Config{Dir: dir, Listener: ln, Platform: "sgx"}); err == nil || !strings.Contains(err.Error(), "unknown platform") {
		t.Errorf("Prepare(sgx) = %v", err)
	}
}
