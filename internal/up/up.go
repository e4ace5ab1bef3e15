// Package up assembles the whole attestlog system on one address from
// embedded defaults: a log with its explorer, a witness cosigning it, an
// auditor with its dashboard, and a demo enclave running the example
// release. It is what 'attestlog up' runs; cmd/attestlog only parses its
// flags.
//
// Everything lives in one directory: keys made on the first start and
// reused after, configuration files derived from them (kept when the user
// edits them, see writeGenerated), the log's tiles and the databases.
package up

import (
	"context"
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
	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/web"
	"github.com/attestlog/attestlog/witness"
)

// Defaults of 'attestlog up'.
const (
	DefaultDir    = "attestlog-data"
	DefaultListen = "127.0.0.1:8080"
	// DefaultEnclaveListen is where the demo enclave agent serves TLS.
	DefaultEnclaveListen = "127.0.0.1:8443"
	Origin               = "attestlog.localhost/log"
	WitnessName          = "attestlog.localhost/witness"
)

// Config is what to run.
type Config struct {
	// Dir holds keys, configuration and data (created if missing,
	// reused on restart).
	Dir string
	// Listener serves everything.
	Listener net.Listener
	// Auditor runs the auditor in this process (an independent party by
	// design; off to measure the log alone).
	Auditor bool
	// Pprof serves /debug/pprof/ (for developers; 'up' serves loopback).
	Pprof bool
	// Logger gets every component's log, each with a "component" attribute.
	Logger *slog.Logger
	// EnclaveListener serves the demo enclave agent's TLS (nil: a free
	// port on 127.0.0.1).
	EnclaveListener net.Listener
	// Platform is what the demo enclave plays (PlatformNames; ""
	// is DefaultPlatform): its evidence, the example release and the
	// client policy are that platform's.
	Platform string
	// Wasm is the WebAssembly client the explorer's "Verify an enclave"
	// page serves, set up for the demo enclave (NewWasm: built on demand
	// from the source, or a directory of files built beforehand); nil, no
	// such page.
	Wasm web.VerifyModule
}

// verifyConfig is the explorer's verify page for the demo: the client
// policy and the demo roots it names (rewritten at each start), and the
// demo enclave.
func verifyConfig(info *Info) (web.VerifyConfig, error) {
	pol, err := os.ReadFile(info.ClientPolicy)
	if err != nil {
		return web.VerifyConfig{}, err
	}
	files := map[string]string{}
	for _, root := range []string{info.Demo.TrustRoot, info.Demo.GPUTrustRoot, info.Demo.EndorsementRoot} {
		if root == "" {
			continue
		}
		b, err := os.ReadFile(root)
		if err != nil {
			return web.VerifyConfig{}, err
		}
		files[filepath.Base(root)] = string(b)
	}
	return web.VerifyConfig{Enclave: info.Demo.URL, Policy: string(pol), Files: files, Relay: RelayPrefix + "/g/demo"}, nil
}

// Info is DIR/up.json: what 'attestlog up' runs, for scripts.
type Info struct {
	Dir     string  `json:"dir"`
	URL     string  `json:"url"`
	Log     LogInfo `json:"log"`
	Witness WitInfo `json:"witness"`
	// Operator is the demo operator trusted by the log's policy.
	Operator KeyInfo `json:"operator"`
	// Auditor is the demo auditor key trusted for reproductions.
	Auditor KeyInfo `json:"auditor"`
	// ClientPolicy is a trust policy for 'attestlog verify' that trusts
	// this log, its witness and the demo operator.
	ClientPolicy string `json:"client_policy"`
	// ExampleRelease is a release YAML ready for 'attestlog publish'.
	ExampleRelease string `json:"example_release"`
	// Demo is a demo enclave serving signed SEV-SNP evidence (demo root,
	// trusted only by the client policy above) for the example release,
	// with its proof stapled.
	Demo DemoInfo `json:"demo"`
	// Auditor follows the log and watches the demo enclave.
	AuditorURL    string `json:"auditor_url"`
	AuditorConfig string `json:"auditor_config"`
	AuditorDB     string `json:"auditor_db"`
	// RebuildSandbox says how the auditor rebuilds releases (bubblewrap as
	// whom and limits by what, or why not).
	RebuildSandbox string `json:"rebuild_sandbox,omitempty"`
	PID            int    `json:"pid"`
}

// LogInfo is the log of an Info.
type LogInfo struct {
	URL    string `json:"url"`
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
	Key    string `json:"key"`
	Config string `json:"config"`
}

// WitInfo is the witness of an Info.
type WitInfo struct {
	URL  string `json:"url"`
	Name string `json:"name"`
	VKey string `json:"vkey"`
	Key  string `json:"key"`
}

// DemoInfo is the demo enclave of an Info.
type DemoInfo struct {
	// Platform is what it plays ('up --platform'); Describe says so for
	// people.
	Platform     string `json:"platform"`
	Describe     string `json:"describe"`
	URL          string `json:"url"`
	Measurement  string `json:"measurement"`
	ReleaseIndex uint64 `json:"release_index"`
	TrustRoot    string `json:"trust_root"`
	// GPUTrustRoot is the demo GPU's device root (a test root).
	GPUTrustRoot string `json:"gpu_trust_root"`
	// EndorsementRoot is, on Google Cloud platforms, the test root of the
	// firmware endorsement (standing in for Google's).
	EndorsementRoot string `json:"endorsement_root,omitempty"`
	// GPUs is how many demo GPUs the enclave attaches.
	GPUs int `json:"gpus"`
	// EnclaveURL is the demo enclave agent ('attestlog enclave' with a
	// demo signer): TLS with its attested key set, in front of the
	// demo chat service at ChatUpstream. URL above serves its
	// attestation document and challenges over plain HTTP.
	EnclaveURL   string `json:"enclave_url"`
	ChatUpstream string `json:"chat_upstream"`
	// KeySet is the hex SHA-256 of its key set at start; Source its
	// report source.
	KeySet string `json:"key_set"`
	Source string `json:"source"`
	// RelayURL is an Oblivious HTTP relay (package relay) for the demo
	// enclave's gateway, on up's own listener: what `attestlog proxy
	// --relay` and attestedFetch post to.
	RelayURL string `json:"relay_url"`
}

// KeyInfo is a signing key of an Info: its name, public key and file.
type KeyInfo struct {
	Name   string `json:"name"`
	Public string `json:"public"`
	Key    string `json:"key"`
}

// ReadInfo reads an up.json.
func ReadInfo(path string) (*Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &info, nil
}

// Prepare makes cfg.Dir ready to run from: keys made if missing, the
// example release written once, and the configuration files derived from
// the keys and the address. It returns what will run and notes for the
// user (a file kept because they edited it).
func Prepare(cfg Config) (*Info, []string, error) {
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, nil, err
	}
	logger := cfg.logger()
	plat, err := platformOf(cfg.Platform)
	if err != nil {
		return nil, nil, err
	}
	base := "http://" + cfg.Listener.Addr().String()
	p := func(name string) string { return filepath.Join(abs, name) }
	info := &Info{Dir: abs, URL: base, PID: os.Getpid()}

	// Keys, created on first run and reused after.
	keys := []struct {
		kind, name, file string
		pub              *string
	}{
		{keyfile.KindLog, Origin, "log.key", &info.Log.VKey},
		{keyfile.KindWitness, WitnessName, "witness.key", &info.Witness.VKey},
		{keyfile.KindOperator, "demo-operator", "operator.key", &info.Operator.Public},
		{keyfile.KindAuditor, "demo-auditor", "auditor.key", &info.Auditor.Public},
	}
	for _, k := range keys {
		path := p(k.file)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if _, err := keyfile.Generate(k.kind, k.name, path, "ed25519"); err != nil {
				return nil, nil, err
			}
			logger.Info("created key", "kind", k.kind, "file", path)
		}
		pub, err := keyfile.Public(k.kind, path)
		if err != nil {
			return nil, nil, err
		}
		*k.pub = pub
	}
	info.Log = LogInfo{URL: base, Origin: Origin, VKey: info.Log.VKey, Key: p("log.key"), Config: p("log.yaml")}
	info.Witness = WitInfo{URL: base + "/witness", Name: WitnessName, VKey: info.Witness.VKey, Key: p("witness.key")}
	info.Operator = KeyInfo{Name: "demo-operator", Public: info.Operator.Public, Key: p("operator.key")}
	info.Auditor = KeyInfo{Name: "demo-auditor", Public: info.Auditor.Public, Key: p("auditor.key")}
	info.ClientPolicy = p("client-policy.txt")
	info.Demo = DemoInfo{Platform: plat.name, Describe: plat.what, URL: base + "/demo", TrustRoot: p(plat.rootFile()), GPUTrustRoot: p("demo-gpu-root.pem"), GPUs: 1, RelayURL: base + RelayPrefix + "/g/demo"}
	if plat.endorsed {
		info.Demo.EndorsementRoot = p("demo-gce-root.pem")
	}
	if cfg.EnclaveListener != nil {
		info.Demo.EnclaveURL = "https://" + cfg.EnclaveListener.Addr().String()
	}
	info.AuditorURL, info.AuditorConfig, info.AuditorDB = base+"/auditor", p("auditor.yaml"), p("auditor.db")
	info.ExampleRelease = p(plat.exampleFile())

	// The example release, written once: a release the auditor can
	// rebuild (a local repository with a reproducible build), or, without
	// git, one of fictitious source. It comes first: whether the auditor
	// rebuilds depends on the repository it makes.
	var example string
	if _, err := os.Stat(info.ExampleRelease); errors.Is(err, os.ErrNotExist) {
		now := time.Now().UTC().Format(time.RFC3339)
		if r, err := demo.Create(abs); err == nil {
			m, measured, err := plat.measurements(r.Measurement)
			if err != nil {
				return nil, nil, err
			}
			example = r.YAMLAs("0.1.0", now, plat.release, m, measured)
		} else {
			logger.Warn("no reproducible demo release; the auditor will not rebuild the example", "err", err)
			if example, err = plat.fictitiousRelease(now); err != nil {
				return nil, nil, err
			}
		}
		example += demoGPUs()
	}
	files := configFiles(info, plat, cfg.Listener.Addr().String())
	if example != "" {
		files[plat.exampleFile()] = example
	}
	notes, err := writeGenerated(abs, files)
	if err != nil {
		return nil, nil, err
	}
	return info, notes, nil
}

// configFiles are the configuration files of info served on addr
// (name → content).
func configFiles(info *Info, plat platformSpec, addr string) map[string]string {
	return map[string]string{
		"policy.txt": fmt.Sprintf("# Who may publish to the log (written by 'attestlog up').\noperator %s %s\nauditor %s %s\n",
			info.Operator.Name, info.Operator.Public, info.Auditor.Name, info.Auditor.Public),
		"witness-policy.txt": fmt.Sprintf("# c2sp.org/tlog-policy: checkpoints are published once this quorum cosigned.\nwitness local %s %s\nquorum local\n",
			info.Witness.VKey, info.Witness.URL),
		"client-policy.txt": fmt.Sprintf("# A client trust policy for this local stack (written by 'attestlog up').\nlog %s %s\nwitness local %s\nquorum local\noperator %s %s\nauditor %s %s\n"+
			clientPlatform(plat)+
			"# Fail closed: trust a release only with the log's proof that nothing revoked its measurement,\n# under a checkpoint the witnesses cosigned within a day.\nrevocation-proof required\nmax-checkpoint-age 24h\n"+
			"# The demo enclave's GPU (a demo device root, trusted here only; it has no NVIDIA RIM:\n# the release carries its golden measurements).\ntrust-root gpu demo-gpu-root.pem\ngpu nvidia count=1 arch=hopper mode=cc rims=optional\n",
			info.Log.VKey, info.URL, info.Witness.VKey, info.Operator.Name, info.Operator.Public, info.Auditor.Name, info.Auditor.Public),
		"log.yaml": fmt.Sprintf("# Log configuration (written by 'attestlog up').\norigin: %s\nlisten: %s\nkey: log.key\nstorage:\n  posix:\n    dir: tiles\nindex: index.db\npolicy: policy.txt\nwitness_policy: witness-policy.txt\ncheckpoint_interval: 500ms\n",
			Origin, addr),
		"auditor.yaml": fmt.Sprintf("# Auditor configuration (written by 'attestlog up').\n"+
			"db: auditor.db\nkey: auditor.key\npoll_interval: 2s\nlogs:\n  - vkey: %s\n    url: %s\n    policy: client-policy.txt\n    witness_policy: witness-policy.txt\n"+
			"# The demo enclave listens on loopback: a deployment's address must be public unless allowed.\n"+
			"# Over https the auditor reads its attestation document as clients do: on a connection\n# whose TLS key the document's key set names (no hardware report per poll).\n"+
			"deployments:\n  - {name: demo, url: %q, policy: client-policy.txt, interval: 5s, allow_private: true}\n%s",
			info.Log.VKey, info.URL, deploymentURL(info), rebuildConfig(filepath.Join(info.Dir, "demo-src"), plat)),
		"witness.yaml": fmt.Sprintf("# Witness configuration (written by 'attestlog up').\nlisten: %s\nkey: witness.key\ndb: witness.db\nlogs:\n  - origin: %s\n    vkey: %s\n",
			addr, Origin, info.Log.VKey),
	}
}

// clientPlatform are the client policy lines of the demo's platform (a
// fmt format: its percent signs doubled).
func clientPlatform(plat platformSpec) string {
	if plat.name != DefaultPlatform {
		return "# The demo enclave plays " + plat.what + ".\n" + strings.ReplaceAll(plat.policy, "%", "%%")
	}
	return strings.ReplaceAll(plat.policy, "%", "%%")
}

// deploymentURL is the demo deployment the auditor watches: the enclave
// agent over https when its address is known, else its document over
// plain HTTP at /demo.
func deploymentURL(info *Info) string {
	if info.Demo.EnclaveURL != "" {
		return info.Demo.EnclaveURL
	}
	return info.Demo.URL
}

// Run prepares cfg.Dir, starts everything, writes DIR/up.json, calls
// ready with what runs, and serves until ctx ends; then it stops the log
// (whose last checkpoint the witness still cosigns), the auditor and the
// server, in that order.
func Run(ctx context.Context, cfg Config, ready func(*Info)) error {
	logger := cfg.logger()
	if cfg.EnclaveListener == nil {
		// Before Prepare, which names its address in auditor.yaml.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		cfg.EnclaveListener = ln
		defer ln.Close() // the agent's server closes it too; a second Close does nothing
	}
	info, notes, err := Prepare(cfg)
	if err != nil {
		return err
	}
	for _, n := range notes {
		logger.Warn(n)
	}
	p := func(name string) string { return filepath.Join(info.Dir, name) }

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
	relayHandler := newSwappable(http.NotFoundHandler())
	mux := http.NewServeMux()
	mux.Handle(RelayPrefix+"/", http.StripPrefix(RelayPrefix, relayHandler))
	mux.Handle("/witness/", http.StripPrefix("/witness", wit.Handler()))
	mux.Handle("/demo/", http.StripPrefix("/demo", demoHandler))
	mux.Handle("/auditor/", http.StripPrefix("/auditor", auditorHandler))
	mux.Handle(web.DefaultDashboardPrefix, dashHandler)
	mux.Handle("/", logHandler)
	mux.HandleFunc("GET /demo/{$}", func(w http.ResponseWriter, r *http.Request) { writeDemoIndex(w, info) })
	mux.HandleFunc("GET /auditor/{$}", func(w http.ResponseWriter, r *http.Request) { writeAuditorIndex(w, info, cfg.Auditor) })
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	srv := httpserve.NewServer(mux)
	// The server outlives ctx: the log's shutdown still needs the
	// witness to cosign its last checkpoint.
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	errc := make(chan error, 1)
	go func() { errc <- httpserve.Serve(srvCtx, srv, cfg.Listener) }()

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
	wp, err := os.ReadFile(p("witness-policy.txt"))
	if err != nil {
		return err
	}
	exOpts := []web.Option{web.WithWitnessPolicy(wp), web.WithDashboardURL(web.DefaultDashboardPrefix)}
	if cfg.Wasm != nil {
		exOpts = append(exOpts, web.WithVerifyPage(cfg.Wasm, func() (web.VerifyConfig, error) { return verifyConfig(info) }))
	}
	ex, err := web.NewExplorer(lg, exOpts...)
	if err != nil {
		return err
	}
	logHandler.Set(ex.Site(lg.Handler()))

	// The demo enclave runs the example release: publish it (a duplicate
	// after the first start) and staple its proof to the evidence.
	ag, err := startDemo(ctx, lg, info, cfg.EnclaveListener, logger.With("component", "demo-enclave"))
	if err != nil {
		return fmt.Errorf("demo enclave: %w", err)
	}
	demoHandler.Set(ag.DocumentHandler())
	rh, err := demoRelay(info.Demo.EnclaveURL, logger.With("component", "relay"))
	if err != nil {
		return err
	}
	relayHandler.Set(rh)

	// The auditor follows the log and watches the demo enclave.
	if cfg.Auditor {
		stop, sandbox, err := startAuditor(ctx, info.AuditorConfig, logger, auditorHandler, dashHandler)
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
	if ready != nil {
		ready(info)
	}
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

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// startAuditor runs the auditor of cfgPath until ctx ends, serving its
// status and dashboard through the given handlers. stop waits for it.
func startAuditor(ctx context.Context, cfgPath string, logger *slog.Logger, auditorHandler, dashHandler *swappable) (stop func(), sandbox string, err error) {
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
