package main

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

func init() {
	register("bench floor-serve", "serve the floor of 'bench append' in a process of its own (bench append starts it)", runBenchFloorServe)
}

// benchStorage are the flags naming the storage of the floor: POSIX in a
// temporary directory, or a bucket and a database of its own on S3 +
// MySQL (credentials from the AWS_* environment).
type benchStorage struct {
	kind, endpoint, bucket, region, dsn *string
}

func addBenchStorageFlags(fs interface {
	String(name, value, usage string) *string
}) benchStorage {
	return benchStorage{
		kind:     fs.String("storage", "posix", "storage of the floor and the tessera baseline: posix (a temporary directory) or s3 (--s3-endpoint, --s3-bucket, --mysql-dsn, credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); give the log the same kind"),
		endpoint: fs.String("s3-endpoint", "", "with --storage s3: the S3-compatible server's URL (empty: AWS)"),
		bucket:   fs.String("s3-bucket", "", "with --storage s3: an empty bucket for the floor's log"),
		region:   fs.String("s3-region", logserver.DefaultS3Region, "with --storage s3: the bucket's region"),
		dsn:      fs.String("mysql-dsn", "", "with --storage s3: an empty MySQL/MariaDB database for the floor's log"),
	}
}

// storage is the logserver storage the flags name; dir is for POSIX.
func (b benchStorage) storage(dir string) (*logserver.Storage, error) {
	switch *b.kind {
	case "posix":
		return &logserver.Storage{POSIX: &logserver.POSIXStorage{Dir: dir}}, nil
	case "s3":
		if *b.bucket == "" || *b.dsn == "" {
			return nil, fmt.Errorf("--storage s3 needs --s3-bucket and --mysql-dsn")
		}
		return &logserver.Storage{
			S3:    &logserver.S3Storage{Endpoint: *b.endpoint, Bucket: *b.bucket, Region: *b.region, AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")},
			MySQL: &logserver.MySQLStorage{DSN: *b.dsn},
		}, nil
	}
	return nil, fmt.Errorf("--storage %q: posix or s3", *b.kind)
}

// args are the flags again, for the floor's process.
func (b benchStorage) args() []string {
	return []string{"--storage", *b.kind, "--s3-endpoint", *b.endpoint, "--s3-bucket", *b.bucket, "--s3-region", *b.region, "--mysql-dsn", *b.dsn}
}

func runBenchFloorServe(args []string) error {
	fs := newFlagSet("bench floor-serve", "--operator KEY --dir DIR [--storage posix|s3 …]")
	operator := fs.String("operator", "", "the operator's public key, whose signature the floor checks")
	dir := fs.String("dir", "", "directory for the signing key (and POSIX storage)")
	bs := addBenchStorageFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	key, err := statement.ParsePublicKey(*operator)
	if err != nil || *dir == "" {
		fs.Usage()
		return errUsage
	}
	st, err := bs.storage(*dir + "/tiles")
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	app, stop, err := newBareAppenderOn(ctx, *dir, st)
	if err != nil {
		return err
	}
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	return httpserve.Serve(ctx, httpserve.NewServer(floorHandler(app, key)), ln)
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

// floorProcess is the floor running in a process of its own, so that
// its CPU is its own (/proc/PID), not shared with the load generator.
type floorProcess struct {
	URL string
	cmd *exec.Cmd
}

// startFloor starts 'attestlog bench floor-serve' (this binary).
func startFloor(ctx context.Context, dir string, key statement.PublicKey, bs benchStorage) (*floorProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"bench", "floor-serve", "--operator", key.String(), "--dir", dir}, bs.args()...)...)
	cmd.Stderr = os.Stderr
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

// newBareAppenderOn is newBareAppender on storage st.
func newBareAppenderOn(ctx context.Context, dir string, st *logserver.Storage) (*tessera.Appender, func(), error) {
	g, err := keyfile.Generate(keyfile.KindLog, "bench.attestlog/floor", dir+"/log.key", "")
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
