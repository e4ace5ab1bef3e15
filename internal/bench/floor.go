package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/transparency-dev/tessera"

	"github.com/attestlog/attestlog/internal/httpserve"
	"github.com/attestlog/attestlog/internal/keyfile"
	"github.com/attestlog/attestlog/log/api"
	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/log/statement"
)

// Storage names the storage of the floor and of the tessera baseline:
// POSIX in a temporary directory, or a bucket and a database of its own on
// S3 + MySQL (credentials from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY). Its fields are the flags of the same names.
type Storage struct {
	// Kind is "posix" or "s3" (--storage).
	Kind string
	// Endpoint (empty: AWS), Bucket and Region are the S3-compatible
	// server, an empty bucket and its region (--s3-endpoint, --s3-bucket,
	// --s3-region); DSN is an empty MySQL/MariaDB database (--mysql-dsn).
	Endpoint, Bucket, Region, DSN string
}

// LogStorage is the log server's storage that s names; dir is for POSIX.
// Its errors name the flags that are wrong.
func (s Storage) LogStorage(dir string) (*logserver.Storage, error) {
	switch s.Kind {
	case "posix":
		return &logserver.Storage{POSIX: &logserver.POSIXStorage{Dir: dir}}, nil
	case "s3":
		if s.Bucket == "" || s.DSN == "" {
			return nil, fmt.Errorf("--storage s3 needs --s3-bucket and --mysql-dsn")
		}
		return &logserver.Storage{
			S3:    &logserver.S3Storage{Endpoint: s.Endpoint, Bucket: s.Bucket, Region: s.Region, AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")},
			MySQL: &logserver.MySQLStorage{DSN: s.DSN},
		}, nil
	}
	return nil, fmt.Errorf("--storage %q: posix or s3", s.Kind)
}

// args are the flags again, for the floor's process.
func (s Storage) args() []string {
	return []string{"--storage", s.Kind, "--s3-endpoint", s.Endpoint, "--s3-bucket", s.Bucket, "--s3-region", s.Region, "--mysql-dsn", s.DSN}
}

// FloorOptions are the options of 'attestlog bench floor-serve'.
type FloorOptions struct {
	// Operator is the key whose signature the floor checks.
	Operator statement.PublicKey
	// Dir holds the floor's log key (and its POSIX storage).
	Dir string
	// Storage is the floor's storage.
	Storage Storage
}

// FloorServe serves the floor of [Append] on a free loopback port until
// ctx ends; its first line on stdout is "listening ADDR".
func FloorServe(ctx context.Context, o FloorOptions, stdout io.Writer) error {
	st, err := o.Storage.LogStorage(o.Dir + "/tiles")
	if err != nil {
		return err
	}
	app, stop, err := newBareAppender(ctx, o.Dir, "bench.attestlog/floor", st)
	if err != nil {
		return err
	}
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	return httpserve.Serve(ctx, httpserve.NewServer(floorHandler(app, o.Operator)), ln)
}

// floorHandler is the least any log that checks signatures must do for an
// entry: POST /add over HTTP, decode the DSSE envelope, verify its
// signature with the operator key, append to a bare Tessera log, answer
// with the index. No statement parsing, canonical check, policy,
// duplicate detection or index.
func floorHandler(app *tessera.Appender, key statement.PublicKey) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, statement.MaxEntrySize))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		var env statement.Envelope
		if err := jsonv2.Unmarshal(body, &env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, ok := env.VerifiedBy([]statement.PublicKey{key}); !ok {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		i, err := addRetrying(r.Context(), app, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.AddResponse{Index: i.Index})
	})
	return mux
}

// floorSettle is how long the floor's CPU meter runs on after its load
// stops: two of its checkpoint intervals and a half second, for Tessera to
// integrate what it sequenced (the log's meter likewise runs until the
// log has indexed what it acknowledged, which it does only once
// integrated). Idle, the floor spends next to nothing in that time.
func floorSettle(bs Storage) time.Duration {
	interval := logserver.DefaultCheckpointInterval
	if bs.Kind == "s3" {
		interval = logserver.DefaultMySQLCheckpointInterval
	}
	return 2*interval + 500*time.Millisecond
}

// floorProcess is the floor running in a process of its own, so that
// its CPU is its own (/proc/PID), not shared with the load generator.
type floorProcess struct {
	URL string
	cmd *exec.Cmd
}

// startFloor starts 'attestlog bench floor-serve' (this binary), its
// stderr on stderr.
func startFloor(ctx context.Context, dir string, key statement.PublicKey, bs Storage, stderr io.Writer) (*floorProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"bench", "floor-serve", "--operator", key.String(), "--dir", dir}, bs.args()...)...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &floorProcess{cmd: cmd}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if a, ok := strings.CutPrefix(s.Text(), "listening "); ok {
				line <- a
			}
		}
		close(line)
	}()
	select {
	case a, ok := <-line:
		if !ok {
			cmd.Wait()
			return nil, fmt.Errorf("the floor's process exited before listening")
		}
		f.URL = "http://" + a
		return f, nil
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	f.Close()
	return nil, fmt.Errorf("the floor's process did not listen within 2 minutes")
}

// Close stops the floor's process.
func (f *floorProcess) Close() {
	f.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		f.cmd.Process.Kill()
		<-done
	}
}

// newBareAppender returns a Tessera appender for origin on storage st,
// its key in dir, with the log server's default batching, checkpoint and
// pushback settings and no witnesses.
func newBareAppender(ctx context.Context, dir, origin string, st *logserver.Storage) (*tessera.Appender, func(), error) {
	g, err := keyfile.Generate(keyfile.KindLog, origin, dir+"/log.key", "")
	if err != nil {
		return nil, nil, err
	}
	s, _, err := keyfile.LoadNoteSigner(g.Path)
	if err != nil {
		return nil, nil, err
	}
	driver, err := logserver.NewDriver(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	interval := logserver.DefaultCheckpointInterval
	if st.S3 != nil {
		interval = logserver.DefaultMySQLCheckpointInterval
	}
	tctx, tcancel := context.WithCancel(context.WithoutCancel(ctx))
	app, shutdown, _, err := tessera.NewAppender(tctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(s).
		WithBatching(logserver.DefaultBatchMaxSize, logserver.DefaultBatchMaxAge).
		WithCheckpointInterval(interval).
		WithPushback(logserver.DefaultPushback))
	if err != nil {
		tcancel()
		return nil, nil, err
	}
	return app, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdown(sctx)
		tcancel()
	}, nil
}
