package witness

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attestlog/attestlog/witness/protocol"

	"github.com/attestlog/attestlog/internal/yamlx"
)

// Defaults for the Config fields left empty.
const (
	DefaultListen          = "127.0.0.1:7380"
	DefaultDB              = "witness.db"
	DefaultMaxRequestBytes = protocol.DefaultMaxRequestBytes
	DefaultRequestTimeout  = 10 * time.Second
	DefaultLogLevel        = "info"
)

// Config is the witness configuration, read from witness.yaml by
// `attestlog witness serve --config witness.yaml`. Unknown keys are an error.
// Only key has no default.
type Config struct {
	// Listen is the TCP address the HTTP server listens on, host:port.
	// Default 127.0.0.1:7380. The server speaks plain HTTP: terminate TLS in
	// front of it if it is reachable from elsewhere.
	Listen string `yaml:"listen"`

	// Key is the path of the witness private key file: one line, a
	// golang.org/x/mod/sumdb/note Ed25519 private key
	// (PRIVATE+KEY+<name>+<hash>+<base64>), as written by
	// `attestlog keygen --kind witness`. The file MUST NOT be readable by
	// group or others (mode 0600); the witness refuses to start otherwise.
	// The key name is the witness name in its cosignature lines. Required.
	// A relative path is relative to the directory of the config file.
	Key string `yaml:"key"`

	// DB is the path of the SQLite database holding the logs, their keys and
	// the latest cosigned checkpoint of each. Created if missing. It must be
	// on a local file system (SQLite locking, fsync). Default witness.db;
	// a relative path is relative to the directory of the config file.
	DB string `yaml:"db"`

	// Logs are added at start-up, as `attestlog witness add-log` would: a new
	// origin is witnessed from its first checkpoint (old 0); a known one
	// keeps its state. Logs added with add-log need not be listed here, and
	// removing an entry here does not remove the log (use remove-log).
	Logs []LogConfig `yaml:"logs"`

	// MaxRequestBytes limits the size of a request body. Default 65536.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`

	// RequestTimeout bounds reading a request (for example "10s"); a
	// body not received in time gets 408. Writing the response may take
	// up to twice as long. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`

	// LogLevel is the minimum level of the slog lines written to standard
	// error by `witness serve`: debug, info, warn or error. Every request
	// logs one line at info. Default info.
	LogLevel string `yaml:"log_level"`
}

// LogConfig is one log in Config.Logs.
type LogConfig struct {
	// Origin is the log's checkpoint origin line, for example
	// "example.com/log".
	Origin string `yaml:"origin"`
	// VKey is the log's note verifier key (Ed25519 "name+hash+base64", or
	// any key type transparency-dev/formats/note.NewVerifier accepts).
	VKey string `yaml:"vkey"`
}

// ParseConfig decodes YAML into a Config, rejecting unknown keys, fills in
// defaults and validates it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := yamlx.Unmarshal(data, &c); err != nil {
		return Config{}, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads and parses the YAML file at path (see ParseConfig).
// Relative key and db paths are relative to the directory of path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading witness config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if !filepath.IsAbs(c.Key) {
		c.Key = filepath.Join(dir, c.Key)
	}
	if !filepath.IsAbs(c.DB) {
		c.DB = filepath.Join(dir, c.DB)
	}
	return c, nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DB == "" {
		c.DB = DefaultDB
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
}

// Validate checks every field, after defaults were applied, and says what
// to change. It does not touch the file system (Open does).
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err))
	}
	if c.Key == "" {
		errs = append(errs, errors.New("key: required: the path of the witness key file (attestlog keygen --kind witness)"))
	}
	if c.DB == "" {
		errs = append(errs, errors.New("db: required: the path of the SQLite database file"))
	}
	if c.MaxRequestBytes < 4096 {
		errs = append(errs, fmt.Errorf("max_request_bytes: %d is too small to hold a checkpoint with a proof; use at least 4096", c.MaxRequestBytes))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request_timeout: %v is negative", c.RequestTimeout))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("log_level: %v", err))
	}
	seen := map[string]bool{}
	for i, l := range c.Logs {
		if err := validateLog(l.Origin, l.VKey); err != nil {
			errs = append(errs, fmt.Errorf("logs[%d]: %w", i, err))
		}
		k := l.Origin + "\x00" + l.VKey
		if seen[k] {
			errs = append(errs, fmt.Errorf("logs[%d]: %q with this key is listed twice", i, l.Origin))
		}
		seen[k] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid witness config: %w", errors.Join(errs...))
	}
	return nil
}

// ParseLevel parses a Config.LogLevel value.
func ParseLevel(s string) (slog.Level, error) { return parseLevel(s) }

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return l, fmt.Errorf("%q is not one of debug, info, warn, error", s)
	}
	return l, nil
}
