package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attestlog/attestlog/auditor"
	"github.com/attestlog/attestlog/internal/demo"
	fakeenclave "github.com/attestlog/attestlog/internal/demo/enclave"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/policy/evidence"
	"github.com/attestlog/attestlog/web"
	"github.com/attestlog/attestlog/witness"
)

func init() {
	register("up", "run the whole system on embedded defaults (log, witness, auditor, demo enclave)", runUp)
}

// Defaults of 'attestlog up'.
const (
	DefaultUpDir    = "attestlog-data"
	DefaultUpListen = "127.0.0.1:8080"
	upOrigin        = "attestlog.localhost/log"
	upWitnessName   = "attestlog.localhost/witness"
)

// UpInfo is DIR/up.json: what 'attestlog up' runs, for scripts.
type UpInfo struct {
	Dir     string `json:"dir"`
	URL     string `json:"url"`
	Log     UpLog  `json:"log"`
	Witness UpWit  `json:"witness"`
	// Operator is the demo operator trusted by the log's policy.
	Operator UpKey `json:"operator"`
	// Auditor is the demo auditor key trusted for reproductions.
	Auditor UpKey `json:"auditor"`
	// ClientPolicy is a trust policy for 'attestlog verify' that trusts
	// this log, its witness and the demo operator.
	ClientPolicy string `json:"client_policy"`
	// ExampleRelease is a release YAML ready for 'attestlog publish'.
	ExampleRelease string `json:"example_release"`
	// Demo is a test enclave serving signed SEV-SNP evidence (test root,
	// trusted only by the client policy above) for the example release,
	// with its proof stapled.
	Demo UpDemo `json:"demo"`
	// Auditor follows the log and watches the demo enclave.
	AuditorURL    string `json:"auditor_url"`
	AuditorConfig string `json:"auditor_config"`
	AuditorDB     string `json:"auditor_db"`
	// RebuildSandbox says how the auditor rebuilds releases (bubblewrap as
	// whom and limits by what, or why not).
	RebuildSandbox string `json:"rebuild_sandbox,omitempty"`
	PID            int    `json:"pid"`
}

type UpLog struct {
	URL    string `json:"url"`
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
	Key    string `json:"key"`
	Config string `json:"config"`
}

type UpWit struct {
	URL  string `json:"url"`
	Name string `json:"name"`
	VKey string `json:"vkey"`
	Key  string `json:"key"`
}

type UpDemo struct {
	URL          string `json:"url"`
	Measurement  string `json:"measurement"`
	ReleaseIndex uint64 `json:"release_index"`
	TrustRoot    string `json:"trust_root"`
}

type UpKey struct {
	Name   string `json:"name"`
	Public string `json:"public"`
	Key    string `json:"key"`
}

func runUp(args []string) error {
	fs := newFlagSet("up", "[--dir DIR] [--listen ADDR]")
	dir := fs.String("dir", DefaultUpDir, "directory for keys, configuration and data (reused on restart)")
	listen := fs.String("listen", DefaultUpListen, "address to serve everything on (port 0 picks a free port)")
	withAuditor := fs.Bool("auditor", true, "run the auditor (an independent party by design, in this process for the demo; --auditor=false to benchmark the log alone)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	serverGC()
	ctx, cancel := signalContext()
	defer cancel()
	logger := newLogger()

	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (use --listen to pick another address)", *listen, err)
	}
	base := "http://" + ln.Addr().String()
	info := UpInfo{Dir: abs, URL: base, PID: os.Getpid()}
	p := func(name string) string { return filepath.Join(abs, name) }

	// Keys, created on first run and reused after.
	keys := []struct {
		kind, name, file string
		pub              *string
	}{
		{keyfile.KindLog, upOrigin, "log.key", &info.Log.VKey},
		{keyfile.KindWitness, upWitnessName, "witness.key", &info.Witness.VKey},
		{keyfile.KindOperator, "demo-operator", "operator.key", &info.Operator.Public},
		{keyfile.KindAuditor, "demo-auditor", "auditor.key", &info.Auditor.Public},
	}
	for _, k := range keys {
		path := p(k.file)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if _, err := keyfile.Generate(k.kind, k.name, path, "ed25519"); err != nil {
				return err
			}
			logger.Info("created key", "kind", k.kind, "file", path)
		}
		pub, err := keyfile.Public(k.kind, path)
		if err != nil {
			return err
		}
		*k.pub = pub
	}
	info.Log = UpLog{URL: base, Origin: upOrigin, VKey: info.Log.VKey, Key: p("log.key"), Config: p("log.yaml")}
	info.Witness = UpWit{URL: base + "/witness", Name: upWitnessName, VKey: info.Witness.VKey, Key: p("witness.key")}
	info.Operator = UpKey{Name: "demo-operator", Public: info.Operator.Public, Key: p("operator.key")}
	info.Auditor = UpKey{Name: "demo-auditor", Public: info.Auditor.Public, Key: p("auditor.key")}
	info.ClientPolicy = p("client-policy.txt")
	info.Demo = UpDemo{URL: base + "/demo", TrustRoot: p("demo-snp-root.pem")}
	info.AuditorURL, info.AuditorConfig, info.AuditorDB = base+"/auditor", p("auditor.yaml"), p("auditor.db")
	info.ExampleRelease = p("example-release.yaml")

	// The example release, written once: a release the auditor can
	// rebuild (a local repository with a reproducible build), or, without
	// git, one of fictitious source.
	var example string
	if _, err := os.Stat(info.ExampleRelease); errors.Is(err, os.ErrNotExist) {
		now := time.Now().UTC().Format(time.RFC3339)
		if r, err := demo.Create(abs); err == nil {
			example = r.YAML("0.1.0", now)
		} else {
			logger.Warn("no reproducible demo release; the auditor will not rebuild the example", "err", err)
			example = exampleRelease(now)
		}
	}

	// Configuration files are derived from the keys and the address.
	// They are written once; see writeGenerated for what happens when
	// they would change.
	files := map[string]string{
		"policy.txt": fmt.Sprintf("# Who may publish to the log (written by 'attestlog up').\noperator %s %s\nauditor %s %s\n",
			info.Operator.Name, info.Operator.Public, info.Auditor.Name, info.Auditor.Public),
		"witness-policy.txt": fmt.Sprintf("# c2sp.org/tlog-policy: checkpoints are published once this quorum cosigned.\nwitness local %s %s\nquorum local\n",
			info.Witness.VKey, info.Witness.URL),
		"client-policy.txt": fmt.Sprintf("# A client trust policy for this local stack (written by 'attestlog up').\nlog %s %s\nwitness local %s\nquorum local\noperator %s %s\nauditor %s %s\n"+
			"# The demo enclave's evidence is signed by a test root: trusted here only.\ntrust-root sev-snp demo-snp-root.pem\n",
			info.Log.VKey, base, info.Witness.VKey, info.Operator.Name, info.Operator.Public, info.Auditor.Name, info.Auditor.Public),
		"log.yaml": fmt.Sprintf("# Log configuration (written by 'attestlog up').\norigin: %s\nlisten: %s\nkey: log.key\nstorage:\n  posix:\n    dir: tiles\nindex: index.db\npolicy: policy.txt\nwitness_policy: witness-policy.txt\ncheckpoint_interval: 1s\n",
			upOrigin, ln.Addr().String()),
		"auditor.yaml": fmt.Sprintf("# Auditor configuration (written by 'attestlog up').\n"+
			"db: auditor.db\nkey: auditor.key\npoll_interval: 2s\nlogs:\n  - vkey: %s\n    url: %s\n    policy: client-policy.txt\n    witness_policy: witness-policy.txt\n"+
			"deployments:\n  - {name: demo, url: %q, policy: client-policy.txt, interval: 5s}\n%s",
			info.Log.VKey, base, info.Demo.URL, rebuildConfig(p("demo-src"))),
		"witness.yaml": fmt.Sprintf("# Witness configuration (written by 'attestlog up').\nlisten: %s\nkey: witness.key\ndb: witness.db\nlogs:\n  - origin: %s\n    vkey: %s\n",
			ln.Addr().String(), upOrigin, info.Log.VKey),
	}

	if example != "" {
		files["example-release.yaml"] = example
	}
	notes, err := writeGenerated(abs, files)
	if err != nil {
		return err
	}
	for _, n := range notes {
		logger.Warn(n)
	}

	// One HTTP server: the witness under /witness/, the log at the root.
	// The listener is up before the log starts, since the log's first
	// checkpoint needs the witness's cosignature.
	wcfg, err := witness.LoadConfig(p("witness.yaml"))
	if err != nil {
		return err
	}
	wcfg.Key, wcfg.DB = p("witness.key"), p("witness.db")
	wit, err := witness.Open(ctx, wcfg, logger.With("component", "witness"))
	if err != nil {
		return err
	}
	defer wit.Close()

	logHandler := newSwappable(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the log is starting", http.StatusServiceUnavailable)
	}))
	demoHandler := newSwappable(http.NotFoundHandler())
	auditorHandler := newSwappable(http.NotFoundHandler())
	dashHandler := newSwappable(http.NotFoundHandler())
	mux := http.NewServeMux()
	mux.Handle("/witness/", http.StripPrefix("/witness", wit.Handler()))
	mux.Handle("/demo/", http.StripPrefix("/demo", demoHandler))
	mux.Handle("/auditor/", http.StripPrefix("/auditor", auditorHandler))
	mux.Handle(web.DefaultDashboardPrefix, dashHandler)
	mux.Handle("/", logHandler)
	// Index pages for the two prefixes that otherwise only answer at
	// their endpoints.
	mux.HandleFunc("GET /demo/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "The demo enclave of 'attestlog up': a test SEV-SNP enclave (signed by a test root that only %s trusts) running release %d.\n\n"+
			"Evidence: GET %s/.well-known/attestlog/evidence?nonce=HEX (32 to 64 bytes of hex), with its proof stapled.\n"+
			"Verify it: attestlog verify --policy %s --enclave %s\n", rel2(info.ClientPolicy), info.Demo.ReleaseIndex, info.Demo.URL, rel2(info.ClientPolicy), info.Demo.URL)
	})
	mux.HandleFunc("GET /auditor/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !*withAuditor {
			fmt.Fprintln(w, "The auditor is not running ('attestlog up --auditor=false').")
			return
		}
		fmt.Fprintf(w, "The auditor of 'attestlog up' (configuration %s):\n\n"+
			"  %s/status   how far it follows the log, rebuilds, deployments, open alerts (JSON)\n"+
			"  %s/alerts   the newest 1000 alerts (JSON; ?open=1 for open ones)\n"+
			"  %s/metrics  Prometheus metrics\n"+
			"  %s%s       the audit dashboard (HTML)\n", rel2(info.AuditorConfig), info.AuditorURL, info.AuditorURL, info.AuditorURL, base, web.DefaultDashboardPrefix)
	})
	if os.Getenv("ATTESTLOG_PPROF") == "1" {
		// Profiling for developers, on the loopback address 'up' serves.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	srv := newServer(mux)
	// The server outlives the signal: the log's shutdown still needs the
	// witness to cosign its last checkpoint.
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	errc := make(chan error, 1)
	go func() { errc <- serve(srvCtx, srv, ln) }()

	lcfg, err := logserver.LoadConfig(p("log.yaml"))
	if err != nil {
		return err
	}
	lg, err := logserver.Open(ctx, lcfg, logger.With("component", "log"))
	if err != nil {
		return err
	}
	closeLog := sync.OnceValue(func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return lg.Close(cctx)
	})
	defer closeLog()
	lh, err := withExplorer(lg, p("witness-policy.txt"), web.DefaultDashboardPrefix)
	if err != nil {
		return err
	}
	logHandler.Set(lh)

	// The demo enclave runs the example release: publish it (a duplicate
	// after the first start) and staple its proof to the evidence.
	demo, err := startDemo(ctx, lg, &info)
	if err != nil {
		return fmt.Errorf("demo enclave: %w", err)
	}
	demoHandler.Set(evidence.Handler(demo, logger.With("component", "demo-enclave")))

	// The auditor follows the log and watches the demo enclave.
	if *withAuditor {
		stop, sandbox, err := startUpAuditor(ctx, p("auditor.yaml"), logger, auditorHandler, dashHandler)
		if err != nil {
			return err
		}
		defer stop()
		info.RebuildSandbox = sandbox
	}

	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(p("up.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	printUp(info)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		logger.Info("shutting down")
		err := closeLog()
		stopServer()
		<-errc
		return err
	}
}

// startUpAuditor runs the auditor of cfgPath until ctx ends, serving its
// status and dashboard through the given handlers. stop waits for it.
func startUpAuditor(ctx context.Context, cfgPath string, logger *slog.Logger, auditorHandler, dashHandler *swappable) (stop func(), sandbox string, err error) {
	acfg, err := auditor.LoadConfig(cfgPath)
	if err != nil {
		return nil, "", err
	}
	aud, err := auditor.Open(ctx, acfg, logger.With("component", "auditor"))
	if err != nil {
		return nil, "", fmt.Errorf("auditor: %w", err)
	}
	dash, err := web.NewDashboard(aud.DashboardSource(), web.WithExplorerURL(web.DefaultExplorerPrefix))
	if err != nil {
		aud.Close()
		return nil, "", err
	}
	auditorHandler.Set(aud.Handler())
	dashHandler.Set(dash.Handler())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := aud.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("auditor stopped", "err", err)
		}
	}()
	return func() { <-done; aud.Close() }, aud.RebuildSandbox(), nil
}

// swappable is an http.Handler whose handler is set once the service
// behind it has started.
type swappable struct{ p atomic.Pointer[http.Handler] }

func newSwappable(h http.Handler) *swappable {
	s := &swappable{}
	s.Set(h)
	return s
}

func (s *swappable) Set(h http.Handler) { s.p.Store(&h) }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.p.Load()).ServeHTTP(w, r) }

// startDemo publishes the example release with the demo operator key,
// waits for its witnessed proof, and returns a fake SEV-SNP enclave with
// that measurement and proof. It writes the enclave's test root next to
// the client policy and keeps the stapled proof fresh.
func startDemo(ctx context.Context, lg *logserver.Log, info *UpInfo) (*fakeenclave.Enclave, error) {
	signer, err := keyfile.LoadSigner(info.Operator.Key)
	if err != nil {
		return nil, err
	}
	subj, rel, err := statement.LoadReleaseSpec(info.ExampleRelease, time.Now())
	if err != nil {
		return nil, err
	}
	payload, err := statement.EncodeRelease(subj, rel)
	if err != nil {
		return nil, err
	}
	entry, err := statement.Sign(payload, signer)
	if err != nil {
		return nil, err
	}
	res, err := lg.Admit(ctx, entry)
	if err != nil {
		return nil, fmt.Errorf("publishing the example release: %w", err)
	}
	m, err := hex.DecodeString(rel.Measurements.Primary())
	if err != nil || rel.Platform != statement.PlatformSNP {
		return nil, fmt.Errorf("the example release must be an SEV-SNP release")
	}
	enc, err := fakeenclave.NewSNP(m)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(info.Demo.TrustRoot, enc.RootPEM(), 0o644); err != nil {
		return nil, err
	}
	info.Demo.Measurement, info.Demo.ReleaseIndex = rel.Measurements.Primary(), res.Index
	staple := func() error {
		p, err := lg.Proof(ctx, res.Index)
		if err != nil {
			return err
		}
		enc.SetProof(string(p.Marshal()))
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for staple() != nil {
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("no witnessed checkpoint covers the example release: %w", wctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				staple()
			}
		}
	}()
	return enc, nil
}

func orNone(s string) string {
	if s == "" {
		return "none (up --auditor=false)"
	}
	return s
}

// rel2 shortens path relative to the working directory when inside it.
func rel2(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return path
}

func printUp(info UpInfo) {
	rel := info.ExampleRelease
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, rel); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	key := info.Operator.Key
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, key); err == nil && !strings.HasPrefix(r, "..") {
			key = r
		}
	}
	fmt.Printf(`attestlog is up (data in %s; details in %s)

  log      %s   origin %s
  witness  %s   cosigns every checkpoint (quorum: local)
  demo     %s   a test SEV-SNP enclave running release %d
  auditor  %s/status   follows the log, watches the demo enclave (alerts: attestlog alerts --db %s)
           rebuilds: %s

In a browser: the explorer at %s/ui/ and the audit dashboard at %s/audit/

Verify the demo enclave as a client would (hardware, proof, witnesses, policy):

  go run ./cmd/attestlog verify --policy %s --enclave %s

Publish the example release and get its proof:

  go run ./cmd/attestlog publish --log %s --key %s --wait %s

Look it up:

  curl '%s/lookup?measurement=%s'

Stop with Ctrl-C; 'attestlog up' again reuses everything in %s.
`, info.Dir, filepath.Join(info.Dir, "up.json"), info.Log.URL, info.Log.Origin, info.Witness.URL,
		info.Demo.URL, info.Demo.ReleaseIndex, info.AuditorURL, rel2(info.AuditorDB), orNone(info.RebuildSandbox), info.URL, info.URL, rel2(info.ClientPolicy), info.Demo.URL,
		info.Log.URL, key, rel, info.Log.URL, info.Demo.Measurement, info.Dir)
}

const exampleMeasurement = "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"

// rebuildConfig is the rebuild section of up's auditor: on, in a
// bubblewrap sandbox when available, when the demo repository exists.
func rebuildConfig(demoSrc string) string {
	if _, err := os.Stat(filepath.Join(demoSrc, ".git")); err != nil {
		return "rebuild:\n  enabled: false   # no local demo repository to rebuild from\n"
	}
	return "rebuild:\n  enabled: true\n  sandbox: auto\n  repo_schemes: [file, https]\n  timeout: 2m\n"
}

func exampleRelease(now string) string {
	return `# An example release (written by 'attestlog up'). Publish it with
#   attestlog publish --log URL --key operator.key --wait example-release.yaml
# The launch digest is sev-snp-measure's published value for the AmdSev
# OVMF with 1 EPYC-v4 vCPU, an empty kernel, initrd and command line.
version: 0.1.0
platform: sev-snp
time: ` + now + `
measurements:
  snp:
    launch_digest: ` + exampleMeasurement + `
artifacts:
  - name: OVMF.fd
    sha256: 0000000000000000000000000000000000000000000000000000000000000000
source:
  repo: https://github.com/example/enclave
  commit: 0123456789abcdef0123456789abcdef01234567
recipe:
  argv: [make, release]
  env: {SOURCE_DATE_EPOCH: "0"}
  outputs: [OVMF.fd, bzImage, initrd.img]
  measure:
    firmware: OVMF.fd
    kernel: bzImage
    initrd: initrd.img
    cmdline: ""
    vcpus: 1
    vcpu_type: EPYC-v4
    guest_features: "0x21"
    ovmf_hash: 086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74
`
}
