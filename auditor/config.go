package auditor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gopkg.in/yaml.v3"

	"github.com/attestlog/attestlog/auditor/internal/rebuild"

	"github.com/attestlog/attestlog/internal/egress"
	"github.com/attestlog/attestlog/internal/yamlx"
)

// Defaults of the configuration.
const (
	DefaultDB                = "auditor.db"
	DefaultPollInterval      = 10 * time.Second
	DefaultDeploymentPoll    = time.Minute
	DefaultRebuildTimeout    = 30 * time.Minute
	DefaultRebuildMaxLog     = 1 << 20
	DefaultRebuildMaxOutput  = 4 << 30
	DefaultRebuildPath       = "/usr/local/bin:/usr/bin:/bin"
	DefaultWebhookTimeout    = 10 * time.Second
	DefaultWebhookMaxBackoff = 5 * time.Minute
	// DefaultDeploymentTimeout bounds one poll of a deployment.
	DefaultDeploymentTimeout = 30 * time.Second
	// DefaultUnreachableAfter is how many polls of a deployment in a row
	// may fail before deployment-unreachable is raised.
	DefaultUnreachableAfter = 3
)

// Config is the auditor's configuration, read from one YAML file
// (`attestlog audit --config auditor.yaml`). Unknown keys are an error.
// Relative paths are relative to the directory of the file.
type Config struct {
	// Listen is the address of the auditor's HTTP server (status JSON,
	// alerts, Prometheus metrics and the checkpoints it verified, which
	// peer auditors read), e.g. "127.0.0.1:8090". Empty: no server.
	Listen string `yaml:"listen"`
	// DB is the SQLite state file (default auditor.db): progress,
	// checkpoints seen, releases and rebuilds, alerts, webhook outbox.
	DB string `yaml:"db"`
	// EvidenceDir is where misbehaviour evidence files are written
	// (default: the directory "misbehaviour" beside DB).
	EvidenceDir string `yaml:"evidence_dir"`
	// Key is the auditor's private key file (PKCS #8, from 'attestlog
	// keygen --kind auditor', mode 0600). With a key, the auditor signs a
	// reproduction statement for each release it rebuilt (match or
	// mismatch) and submits it to the log; the log's policy must list the
	// key as an auditor. Empty: nothing is signed.
	Key string `yaml:"key"`
	// PollInterval is how often logs, witnesses and peers are polled
	// (default 10s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Logs are the logs to follow. At least one is required.
	Logs []LogConfig `yaml:"logs"`
	// Deployments are the enclaves whose served measurements are watched.
	Deployments []DeploymentConfig `yaml:"deployments"`
	// Rebuild configures rebuilding releases.
	Rebuild RebuildConfig `yaml:"rebuild"`
	// Webhooks receive every new alert as a JSON POST, retried with
	// exponential backoff until a 2xx answer, across restarts.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// IndexMap is where the auditor's replay of each log's verifiable
	// index lives: "file" (the default on Linux: a scratch file beside DB,
	// mapped into memory and removed at once; the Go heap holds none of
	// the map, and the kernel pages it, so the auditor's heap stays
	// bounded however long the log) or "memory" (the Go heap, about
	// 0.4–1.4 KB a release, a few percent faster; the default elsewhere).
	// Rebuilt on every start either way.
	IndexMap string `yaml:"index_map"`

	dir  string // of the config file
	file string // the config file, when read from one
}

// LogConfig is one followed log.
type LogConfig struct {
	// Origin is the log's origin line; it must equal the name of VKey.
	// Optional: defaults to the key's name.
	Origin string `yaml:"origin"`
	// VKey is the log's note verifier key (origin+hash+key).
	VKey string `yaml:"vkey"`
	// URL is the log's base URL (its c2sp.org/tlog-tiles endpoints and
	// attestlog API), e.g. "https://log.example.com".
	URL string `yaml:"url"`
	// Policy is a trust policy file (policy.Load format) naming the
	// operators allowed to publish releases, the auditors allowed to
	// publish reproductions and the authorities allowed to revoke. Its
	// witness/group/quorum lines apply unless WitnessPolicy is set. A
	// "log" line, if any, must match VKey. Required.
	Policy string `yaml:"policy"`
	// WitnessPolicy is a c2sp.org/tlog-policy file (witness, group and
	// quorum lines; witness URLs are polled for their latest cosigned
	// checkpoint). Optional; replaces the witnesses of Policy. The
	// quorum must be given, "quorum none" included.
	WitnessPolicy string `yaml:"witness_policy"`
	// Peers are base URLs of other auditors following the same log; their
	// latest verified checkpoint of it (GET /logs/<hex SHA-256 of
	// origin>/checkpoint) is checked for consistency too.
	Peers []string `yaml:"peers"`
}

// DeploymentConfig is one watched deployment.
type DeploymentConfig struct {
	// Name identifies the deployment in alerts and metrics.
	Name string `yaml:"name"`
	// URL is the enclave's base URL; evidence is fetched from
	// URL/.well-known/attestlog/evidence?nonce=HEX with a fresh nonce.
	URL string `yaml:"url"`
	// Log is the origin of the followed log its releases are in
	// (default: the only log).
	Log string `yaml:"log"`
	// Policy is the trust policy whose attestation section the evidence
	// is verified against (platforms, TCB floors, trust-root lines, …).
	// Default: the log's policy.
	Policy string `yaml:"policy"`
	// Interval is how often it is polled (default 1m).
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one poll, the answer read whole (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// UnreachableAfter is how many polls in a row may fail (no answer,
	// an answer other than 200, a refused address or redirect, too
	// large, too slow) before the alert deployment-unreachable is raised
	// (default 3): a deployment cannot hide what it serves by not
	// answering the auditor.
	UnreachableAfter int `yaml:"unreachable_after"`
	// AllowPrivate lets the auditor connect to the deployment at a
	// non-public address: loopback, private (RFC 1918, fc00::/7),
	// link-local (where cloud metadata services answer:
	// 169.254.169.254), shared or reserved. Default false: every address
	// connected to must be public, checked on the address the name
	// resolved to, at each connection (a name that re-resolves gains
	// nothing). Either way no redirect off the URL's origin (scheme, host
	// and port) is followed. `attestlog up` sets it for its demo enclave
	// on 127.0.0.1.
	AllowPrivate bool `yaml:"allow_private"`
}

// RebuildConfig configures rebuilds.
type RebuildConfig struct {
	// Enabled turns rebuilding on (default true).
	Enabled *bool `yaml:"enabled"`
	// Sandbox is "required" (default: refuse to build without a working
	// bubblewrap), "auto" (bubblewrap when it works) or "off" (build on
	// the host as User, which only an auditor running as root can: one
	// that is not root refuses to start rather than build as itself).
	// In every mode the auditor refuses to start if a build could read
	// its key or database, enter the directory of its database, or write
	// or replace its configuration, policies or evidence directory.
	Sandbox string `yaml:"sandbox"`
	// Bwrap is the bubblewrap binary (default "bwrap").
	Bwrap string `yaml:"bwrap"`
	// Git is the git binary (default "git").
	Git string `yaml:"git"`
	// Timeout bounds the source fetch and the build, each (default 30m).
	Timeout time.Duration `yaml:"timeout"`
	// MaxLog bounds the build's combined stdout and stderr (bytes, or
	// with a unit: "1MiB"); a
	// build writing more is stopped and fails (default 1 MiB).
	MaxLog ByteSize `yaml:"max_log"`
	// MaxOutput bounds the bytes left in the build directory (default
	// 4 GiB).
	MaxOutput ByteSize `yaml:"max_output"`
	// Limits bound each build while it runs; a build over one is stopped
	// and reported as rebuild-failed naming it.
	Limits LimitsConfig `yaml:"limits"`
	// User is "UID:GID", who builds run as, sandboxed or not, when the
	// auditor runs as root (default "65534:65534", nobody; best a uid of
	// no other service). An auditor that is not root builds in bubblewrap
	// as itself, and may not set it.
	User string `yaml:"user"`
	// WorkDir is the parent of build directories (default: "rebuild"
	// beside DB).
	WorkDir string `yaml:"work_dir"`
	// RepoSchemes are the repository URL schemes fetched (default
	// [https]; add "file" for local repositories).
	RepoSchemes []string `yaml:"repo_schemes"`
	// Path is the PATH of builds (default /usr/local/bin:/usr/bin:/bin).
	Path string `yaml:"path"`
	// Keep keeps build directories for inspection.
	Keep bool `yaml:"keep"`
}

// LimitsConfig is rebuild.limits. They are enforced with a cgroup of the
// build's own where the auditor may make one (cgroup v2 with the memory
// and pids controllers delegated, or writable v1 memory and pids
// hierarchies), otherwise with rlimits on the build's processes and the
// auditor polling /proc every 100 ms.
type LimitsConfig struct {
	// Memory bounds the memory (and swap) of all the build's processes
	// together (default 8GiB).
	Memory ByteSize `yaml:"memory"`
	// Processes bounds the build's processes and threads (default 1024).
	Processes int64 `yaml:"processes"`
	// Disk bounds the bytes the build may have in its tree and /tmp
	// together (default: max_output).
	Disk ByteSize `yaml:"disk"`
	// CPUTime bounds the CPU time of all its processes together
	// (default: timeout).
	CPUTime time.Duration `yaml:"cpu_time"`
}

// ByteSize is a number of bytes, written as a number or with a binary
// unit: 512, 64KiB, 1536MiB, 8GiB (K, M, G, T are the same units).
type ByteSize int64

// UnmarshalYAML reads a number or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as 8GiB", n.Line)
	}
	v, err := rebuild.ParseBytes(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*b = ByteSize(v)
	return nil
}

// WebhookConfig is one webhook.
type WebhookConfig struct {
	// URL receives a POST of each alert as JSON (Content-Type
	// application/json). Any 2xx answer counts as delivered.
	URL string `yaml:"url"`
	// Headers are added to each request (e.g. Authorization).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxBackoff caps the exponential backoff between attempts (default
	// 5m; the first retry is after 1s).
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// ParseUser reads rebuild.user, "UID:GID" (numbers: the build user needs
// no entry in the host's passwd file, and may not be root).
func ParseUser(s string) (rebuild.Credential, error) {
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return rebuild.Credential{}, fmt.Errorf("%q: want UID:GID, e.g. 65534:65534", s)
	}
	if uid == 0 || gid == 0 {
		return rebuild.Credential{}, fmt.Errorf("%q: builds may not run as root", s)
	}
	return rebuild.Credential{UID: uint32(uid), GID: uint32(gid)}, nil
}

// LoadConfig reads a configuration file, rejecting unknown keys, and
// resolves relative paths against its directory. It does not validate;
// Open does.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c.dir, c.file = filepath.Dir(abs), abs
	return c, nil
}

// ParseConfig parses configuration YAML; relative paths stay relative to
// the working directory.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := yamlx.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// validate fills in defaults and checks everything, resolving paths.
func (c *Config) validate() error {
	if c.DB == "" {
		c.DB = DefaultDB
	}
	c.DB = c.path(c.DB)
	if c.EvidenceDir == "" {
		c.EvidenceDir = filepath.Join(filepath.Dir(c.DB), "misbehaviour")
	}
	c.EvidenceDir = c.path(c.EvidenceDir)
	c.Key = c.path(c.Key)
	switch c.IndexMap {
	case "":
		c.IndexMap = "memory"
		if runtime.GOOS == "linux" {
			c.IndexMap = "file"
		}
	case "memory", "file":
	default:
		return fmt.Errorf("index_map: %q is neither memory nor file", c.IndexMap)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PollInterval < 0 {
		return errors.New("poll_interval must be positive")
	}
	if len(c.Logs) == 0 {
		return errors.New("logs: at least one log is required")
	}
	origins := map[string]bool{}
	for i := range c.Logs {
		l := &c.Logs[i]
		f := fmt.Sprintf("logs[%d]", i)
		v, err := note.NewVerifier(l.VKey)
		if err != nil {
			return fmt.Errorf("%s.vkey: %v", f, err)
		}
		if l.Origin == "" {
			l.Origin = v.Name()
		}
		if l.Origin != v.Name() {
			return fmt.Errorf("%s.origin %q differs from the name of its vkey %q", f, l.Origin, v.Name())
		}
		if origins[l.Origin] {
			return fmt.Errorf("%s: log %q listed twice", f, l.Origin)
		}
		origins[l.Origin] = true
		if err := checkHTTPURL(l.URL); err != nil {
			return fmt.Errorf("%s.url: %v", f, err)
		}
		if l.Policy == "" {
			return fmt.Errorf("%s.policy: a trust policy file is required (operator, auditor and authority lines)", f)
		}
		l.Policy = c.path(l.Policy)
		l.WitnessPolicy = c.path(l.WitnessPolicy)
		for j, p := range l.Peers {
			if err := checkHTTPURL(p); err != nil {
				return fmt.Errorf("%s.peers[%d]: %v", f, j, err)
			}
		}
	}
	names := map[string]bool{}
	for i := range c.Deployments {
		d := &c.Deployments[i]
		f := fmt.Sprintf("deployments[%d]", i)
		if d.Name == "" || strings.ContainsAny(d.Name, " \t\n/") {
			return fmt.Errorf("%s.name: required, without spaces or slashes", f)
		}
		if names[d.Name] {
			return fmt.Errorf("%s.name: %q listed twice", f, d.Name)
		}
		names[d.Name] = true
		if err := checkHTTPURL(d.URL); err != nil {
			return fmt.Errorf("%s.url: %v", f, err)
		}
		if err := checkDeploymentAddress(d.URL, d.AllowPrivate); err != nil {
			return fmt.Errorf("%s.url: %v", f, err)
		}
		if d.Log == "" {
			if len(c.Logs) != 1 {
				return fmt.Errorf("%s.log: required when more than one log is configured", f)
			}
			d.Log = c.Logs[0].Origin
		}
		if !origins[d.Log] {
			return fmt.Errorf("%s.log: %q is not one of the configured logs", f, d.Log)
		}
		d.Policy = c.path(d.Policy)
		if d.Interval == 0 {
			d.Interval = DefaultDeploymentPoll
		}
		if d.Interval < 0 {
			return fmt.Errorf("%s.interval must be positive", f)
		}
		if d.Timeout == 0 {
			d.Timeout = DefaultDeploymentTimeout
		}
		if d.Timeout < 0 {
			return fmt.Errorf("%s.timeout must be positive", f)
		}
		if d.UnreachableAfter == 0 {
			d.UnreachableAfter = DefaultUnreachableAfter
		}
		if d.UnreachableAfter < 0 {
			return fmt.Errorf("%s.unreachable_after must be at least 1", f)
		}
	}
	r := &c.Rebuild
	if r.Enabled == nil {
		t := true
		r.Enabled = &t
	}
	switch r.Sandbox {
	case "":
		r.Sandbox = rebuild.SandboxRequired
	case rebuild.SandboxRequired, rebuild.SandboxAuto, rebuild.SandboxOff:
	default:
		return fmt.Errorf("rebuild.sandbox %q: want required, auto or off", r.Sandbox)
	}
	if r.Bwrap == "" {
		r.Bwrap = "bwrap"
	}
	if r.Git == "" {
		r.Git = "git"
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultRebuildTimeout
	}
	if r.MaxLog == 0 {
		r.MaxLog = DefaultRebuildMaxLog
	}
	if r.MaxOutput == 0 {
		r.MaxOutput = DefaultRebuildMaxOutput
	}
	if r.Timeout < 0 || r.MaxLog < 0 || r.MaxOutput < 0 {
		return errors.New("rebuild: timeout, max_log and max_output must be positive")
	}
	l := &r.Limits
	if l.Memory == 0 {
		l.Memory = rebuild.DefaultMemory
	}
	if l.Processes == 0 {
		l.Processes = rebuild.DefaultProcesses
	}
	if l.Disk == 0 {
		l.Disk = r.MaxOutput
	}
	if l.CPUTime == 0 {
		l.CPUTime = r.Timeout
	}
	switch {
	case l.Memory < 1<<20:
		return fmt.Errorf("rebuild.limits.memory %s: want at least 1MiB", rebuild.FormatBytes(int64(l.Memory)))
	case l.Processes < 8:
		return fmt.Errorf("rebuild.limits.processes %d: want at least 8 (bubblewrap and a shell are two)", l.Processes)
	case l.Disk < 1<<20:
		return fmt.Errorf("rebuild.limits.disk %s: want at least 1MiB", rebuild.FormatBytes(int64(l.Disk)))
	case l.CPUTime < time.Second:
		return fmt.Errorf("rebuild.limits.cpu_time %v: want at least 1s", l.CPUTime)
	}
	if r.User != "" {
		if os.Geteuid() != 0 {
			return fmt.Errorf("rebuild.user %q: only an auditor running as root changes user; this one builds as itself", r.User)
		}
		if _, err := ParseUser(r.User); err != nil {
			return fmt.Errorf("rebuild.user: %v", err)
		}
	}
	if r.WorkDir == "" {
		r.WorkDir = filepath.Join(filepath.Dir(c.DB), "rebuild")
		if os.Geteuid() == 0 {
			// The build user must be able to reach its directory, and the
			// auditor's own may be private: builds go under /var/tmp.
			h := sha256.Sum256([]byte(c.DB))
			r.WorkDir = filepath.Join("/var/tmp", "attestlog-rebuild-"+hex.EncodeToString(h[:6]))
		}
	}
	r.WorkDir = c.path(r.WorkDir)
	if len(r.RepoSchemes) == 0 {
		r.RepoSchemes = []string{"https"}
	}
	for _, s := range r.RepoSchemes {
		if !slices.Contains([]string{"https", "http", "ssh", "git", "file"}, s) {
			return fmt.Errorf("rebuild.repo_schemes: %q is not one of https, http, ssh, git, file", s)
		}
	}
	if r.Path == "" {
		r.Path = DefaultRebuildPath
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		if err := checkHTTPURL(w.URL); err != nil {
			return fmt.Errorf("webhooks[%d].url: %v", i, err)
		}
		if w.Timeout == 0 {
			w.Timeout = DefaultWebhookTimeout
		}
		if w.MaxBackoff == 0 {
			w.MaxBackoff = DefaultWebhookMaxBackoff
		}
		if w.Timeout < 0 || w.MaxBackoff < 0 {
			return fmt.Errorf("webhooks[%d]: timeout and max_backoff must be positive", i)
		}
	}
	return nil
}

// buildReach is what no build may reach (rebuild.Builder's Private and
// Guarded): the key, the database and the directory that holds it (other
// keys often lie beside them) are private; the configuration (private
// when it holds webhook headers, which are credentials), the policies and
// the evidence directory are guarded.
func (c *Config) buildReach() (private, guarded []string) {
	private = []string{c.Key, c.DB, c.DB + "-wal", c.DB + "-shm", c.DB + "-journal", filepath.Dir(c.DB)}
	guarded = []string{c.EvidenceDir}
	secret := false
	for _, w := range c.Webhooks {
		secret = secret || len(w.Headers) > 0
	}
	if secret {
		private = append(private, c.file)
	} else {
		guarded = append(guarded, c.file)
	}
	for _, l := range c.Logs {
		guarded = append(guarded, l.Policy, l.WitnessPolicy)
	}
	for _, d := range c.Deployments {
		guarded = append(guarded, d.Policy)
	}
	return private, guarded
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want http(s)://host[:port][/path]", s)
	}
	return nil
}

// checkDeploymentAddress refuses, at start, a deployment URL whose host
// is a non-public IP address the auditor could never connect to unless
// allowPrivate. A name is checked when it is resolved, at each
// connection.
func checkDeploymentAddress(s string, allowPrivate bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil || allowPrivate || egress.Public(a) {
		return nil
	}
	return fmt.Errorf("%q: %s is not a public address (loopback, private, link-local, …); set allow_private: true to watch a deployment there", s, a)
}
