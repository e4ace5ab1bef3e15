package logserver

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/attestlog/attestlog/internal/yamlx"
)

// Defaults for the batching and checkpoint settings.
const (
	DefaultBatchMaxSize = 256
	DefaultBatchMaxAge  = 100 * time.Millisecond
	// DefaultCheckpointInterval is POSIX storage's: a witnessed proof
	// comes within about half of it plus a witness round trip (p50 337 ms,
	// p99 652 ms at 1,000 entries/s offered, against 539 ms / 1.09 s at
	// 1 s). MySQL storage's is DefaultMySQLCheckpointInterval.
	DefaultCheckpointInterval = 500 * time.Millisecond
	// DefaultMySQLCheckpointInterval is the least interval with MySQL
	// storage and with S3 + MySQL storage (Tessera's MySQL and AWS drivers
	// publish at most once a second).
	DefaultMySQLCheckpointInterval = time.Second
	// DefaultS3Region is the region of S3 storage when none is set.
	DefaultS3Region = "us-east-1"
	// DefaultCheckpointRepublishInterval is how often a log at rest has
	// its checkpoint cosigned again.
	DefaultCheckpointRepublishInterval = time.Minute
	DefaultWitnessTimeout              = 10 * time.Second
	DefaultPushback                    = 4096
)

// Config is the log server's configuration, read from one YAML file
// (`attestlog log serve --config log.yaml`). Unknown keys are an error.
// Relative paths are relative to the directory of the file.
type Config struct {
	// Origin is the log's origin line, e.g. "example.com/attestlog". The
	// signing key's name must equal it.
	Origin string `yaml:"origin"`
	// Listen is the address to serve HTTP on, e.g. "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// Key is the log's private signing key file, a note signer key as
	// written by 'attestlog keygen --kind log' (mode 0600).
	Key string `yaml:"key"`
	// Storage is where Tessera keeps the tree: posix (the embedded
	// default), s3 with mysql (several frontends on S3-compatible object
	// storage and a MySQL-compatible database, Tessera's AWS driver), or
	// mysql alone (Tessera's legacy MySQL driver).
	Storage Storage `yaml:"storage"`
	// Index is the SQLite file of the measurement index (derived data;
	// rebuilt by 'attestlog log reindex').
	Index string `yaml:"index"`
	// Policy is the trust policy file naming the operator keys that may
	// publish releases and revocations, the auditor keys that may publish
	// reproductions and the authorities that may revoke any release.
	Policy string `yaml:"policy"`
	// WitnessPolicy is a c2sp.org/tlog-policy file (witness, group and
	// quorum lines, with witness URLs). A checkpoint is published only once
	// its quorum has cosigned it. "quorum none" publishes unwitnessed.
	WitnessPolicy string `yaml:"witness_policy"`
	// BatchMaxSize is the most entries sequenced together (default 256).
	BatchMaxSize uint `yaml:"batch_max_size"`
	// BatchMaxAge is the longest an entry waits to be sequenced (default
	// 100ms).
	BatchMaxAge time.Duration `yaml:"batch_max_age"`
	// CheckpointInterval is how often a new checkpoint is signed and sent
	// to the witnesses (default 1s; at least 1s with MySQL).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// CheckpointRepublishInterval is how often the checkpoint of a log at
	// rest is signed and cosigned again (default 1m): a client bounds how
	// stale a proof of absence may be (revocation-proof max-age, default
	// 10m) by the witnesses' time, so an idle log must be re-witnessed
	// more often than that.
	CheckpointRepublishInterval time.Duration `yaml:"checkpoint_republish_interval"`
	// IndexCheckpoints makes the log commit its verifiable index (an
	// index checkpoint entry at most every checkpoint interval while
	// entries arrive), so that lookups and absences are provable.
	// Default true; false serves no index proofs, and clients whose policy
	// says 'revocation-proof required' then trust none of its releases.
	IndexCheckpoints *bool `yaml:"index_checkpoints"`
	// WitnessTimeout bounds one round of collecting cosignatures (default
	// 10s).
	WitnessTimeout time.Duration `yaml:"witness_timeout"`
	// Pushback is how many accepted entries may wait to be integrated and
	// indexed before POST /add answers 503 with Retry-After (default
	// 4096).
	Pushback uint `yaml:"pushback"`
	// IndexMap is where the verifiable index's map lives: "memory" (the
	// default: the Go heap, about 1.4 KB a release) or "file" (a scratch
	// file beside Index, mapped into memory and removed at once: the Go
	// heap holds none of the map and the kernel pages it, so the log runs
	// under a memory limit smaller than the map). Rebuilt on every start
	// either way.
	IndexMap string `yaml:"index_map"`
}

// Storage selects Tessera's storage driver: posix alone, s3 with mysql,
// or mysql alone (legacy).
type Storage struct {
	// POSIX stores tiles as files under Dir (the embedded default).
	POSIX *POSIXStorage `yaml:"posix"`
	// S3 (with MySQL) runs Tessera's AWS driver: checkpoint, tiles and
	// entry bundles are objects in an S3-compatible bucket, readable
	// straight from it; sequencing, checkpoint publication and
	// attestlog's cross-frontend state are in the MySQL database.
	S3 *S3Storage `yaml:"s3"`
	// MySQL is the MySQL or MariaDB database: with S3, the AWS driver's
	// (its tables are created on start-up). Alone, it selects Tessera's
	// MySQL driver, which keeps the whole tree in the database: LEGACY.
	// Tessera removed that driver from its main branch (bd4c40ed, March
	// 2026) and sends MySQL users to the AWS driver; it lives on only in
	// Tessera's 1.0.x patch releases. Move such a log with 'attestlog log
	// migrate' (docs/storage.md).
	MySQL *MySQLStorage `yaml:"mysql"`
}

// S3Storage configures the bucket of Tessera's AWS driver. The names are
// those of the AWS SDK's settings (endpoint_url, region, access key).
type S3Storage struct {
	// Bucket is the bucket's name. It must exist; the log never creates
	// or deletes buckets.
	Bucket string `yaml:"bucket"`
	// Prefix would put the log's objects under a key prefix. Tessera
	// v1.0.4 applies the prefix twice when it re-reads an object that
	// already exists (the If-None-Match check of a tile written again
	// after a crash), which stops integration for good: a non-empty prefix
	// is refused. Use a bucket per log.
	Prefix string `yaml:"prefix"`
	// Region is the bucket's region (default us-east-1, also what
	// S3-compatible servers expect when they ignore regions).
	Region string `yaml:"region"`
	// Endpoint is the URL of an S3-compatible server, e.g.
	// "http://127.0.0.1:8333" (SeaweedFS, MinIO, Garage, Ceph RGW);
	// empty for AWS S3. With an endpoint, requests use path-style
	// addressing (endpoint/bucket/key) and send or check checksums only
	// when the S3 API requires them.
	Endpoint string `yaml:"endpoint"`
	// AccessKeyID and SecretAccessKey are static credentials. Without
	// them the AWS SDK's default chain applies: the environment
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
	// AWS_PROFILE), the shared config files, then the instance's role.
	// Keep a file holding the secret mode 0600.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// POSIXStorage configures Tessera's POSIX driver.
type POSIXStorage struct {
	// Dir is the directory holding checkpoint, tiles and entry bundles.
	Dir string `yaml:"dir"`
}

// MySQLStorage configures Tessera's MySQL driver.
type MySQLStorage struct {
	// DSN is a github.com/go-sql-driver/mysql data source name, e.g.
	// "attestlog:secret@tcp(127.0.0.1:3306)/attestlog". With S3 it must
	// name a database of its own: the AWS driver's tables and the legacy
	// driver's share the name Tessera.
	DSN string `yaml:"dsn"`
}

// LoadConfig reads, resolves and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and validates configuration YAML whose relative
// paths are relative to dir.
func ParseConfig(b []byte, dir string) (*Config, error) {
	var c Config
	if err := yamlx.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	c.resolve(dir)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Key)
	abs(&c.Index)
	abs(&c.Policy)
	abs(&c.WitnessPolicy)
	if c.Storage.POSIX != nil {
		abs(&c.Storage.POSIX.Dir)
	}
}

// Validate fills in defaults and checks every setting.
func (c *Config) Validate() error {
	var errs []error
	req := func(v, name string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	req(c.Origin, "origin")
	req(c.Listen, "listen")
	req(c.Key, "key")
	req(c.Index, "index")
	req(c.Policy, "policy")
	req(c.WitnessPolicy, "witness_policy")
	st := &c.Storage
	switch {
	case st.POSIX != nil && (st.MySQL != nil || st.S3 != nil):
		errs = append(errs, errors.New("storage: set posix alone, or s3 with mysql"))
	case st.POSIX != nil:
		req(st.POSIX.Dir, "storage.posix.dir")
	case st.S3 != nil && st.MySQL == nil:
		errs = append(errs, errors.New("storage: s3 needs mysql: {dsn: …} beside it (the AWS driver sequences in MySQL)"))
	case st.S3 != nil:
		req(st.MySQL.DSN, "storage.mysql.dsn")
		errs = append(errs, st.S3.validate())
	case st.MySQL != nil:
		req(st.MySQL.DSN, "storage.mysql.dsn")
	default:
		errs = append(errs, errors.New("storage: set posix: {dir: …}, or s3: {bucket: …} with mysql: {dsn: …}"))
	}
	if c.BatchMaxSize == 0 {
		c.BatchMaxSize = DefaultBatchMaxSize
	}
	if c.BatchMaxAge == 0 {
		c.BatchMaxAge = DefaultBatchMaxAge
	}
	if c.IndexCheckpoints == nil {
		on := true
		c.IndexCheckpoints = &on
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
		if c.Storage.MySQL != nil { // alone or with S3
			c.CheckpointInterval = DefaultMySQLCheckpointInterval
		}
	}
	if c.CheckpointRepublishInterval == 0 {
		c.CheckpointRepublishInterval = max(DefaultCheckpointRepublishInterval, c.CheckpointInterval)
	}
	if c.WitnessTimeout == 0 {
		c.WitnessTimeout = DefaultWitnessTimeout
	}
	if c.Pushback == 0 {
		c.Pushback = DefaultPushback
	}
	switch c.IndexMap {
	case "":
		c.IndexMap = "memory"
	case "memory", "file":
	default:
		errs = append(errs, fmt.Errorf("index_map: %q is neither memory nor file", c.IndexMap))
	}
	if c.BatchMaxAge < 0 || c.CheckpointInterval < 0 || c.WitnessTimeout < 0 || c.CheckpointRepublishInterval < 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if c.CheckpointRepublishInterval < c.CheckpointInterval {
		errs = append(errs, fmt.Errorf("checkpoint_republish_interval %v is shorter than checkpoint_interval %v", c.CheckpointRepublishInterval, c.CheckpointInterval))
	}
	if c.Storage.MySQL != nil && c.CheckpointInterval < time.Second {
		errs = append(errs, errors.New("checkpoint_interval must be at least 1s with mysql or s3 storage"))
	}
	return errors.Join(errs...)
}

// Legacy reports whether the configuration selects Tessera's legacy MySQL
// driver (mysql without s3).
func (s *Storage) Legacy() bool { return s.MySQL != nil && s.S3 == nil && s.POSIX == nil }

func (s *S3Storage) validate() error {
	var errs []error
	if s.Bucket == "" {
		errs = append(errs, errors.New("storage.s3.bucket is required"))
	}
	if s.Prefix != "" {
		errs = append(errs, errors.New("storage.s3.prefix: Tessera v1.0.4 re-reads an existing object under the prefix twice over (prefix/prefix/key), which stops integration after a crash; leave it empty and use a bucket per log"))
	}
	if s.Region == "" {
		s.Region = DefaultS3Region
	}
	if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
		errs = append(errs, errors.New("storage.s3: set both access_key_id and secret_access_key, or neither (then the AWS_* environment or shared config applies)"))
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("storage.s3.endpoint %q is not an http:// or https:// URL", s.Endpoint))
		}
	}
	return errors.Join(errs...)
}
