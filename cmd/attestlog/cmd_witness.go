package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/attestlog/attestlog/witness"
)

func init() {
	register("witness serve", "run a c2sp.org/tlog-witness cosigning witness", runWitnessServe)
	register("witness add-log", "add a log to a witness database (no restart needed)", runWitnessAddLog)
	register("witness list-logs", "list the logs of a witness database, as JSON lines", runWitnessListLogs)
	register("witness remove-log", "stop witnessing a log (its state is kept)", runWitnessRemoveLog)
	register("witness list-evidence", "print the inconsistent checkpoints a witness refused (possible log misbehaviour), as JSON lines", runWitnessListEvidence)
	register("witness vkey", "print the cosignature/v1 verifier key of a witness key file", runWitnessVKey)
}

func runWitnessServe(args []string) error {
	ctx, cancel := signalContext()
	defer cancel()
	return witnessServe(ctx, args, nil)
}

// witnessServe runs the witness until ctx ends; ready, if not nil, is called
// with the listening address.
func witnessServe(ctx context.Context, args []string, ready func(net.Addr)) error {
	fs := newFlagSet("witness serve", "--config witness.yaml")
	config := fs.String("config", "witness.yaml", "witness configuration file (YAML; see the witness.Config documentation)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := witness.LoadConfig(*config)
	if err != nil {
		return err
	}
	level, _ := witness.ParseLevel(cfg.LogLevel) // validated by LoadConfig
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	w, err := witness.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer w.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	fmt.Fprintf(os.Stderr, "witness %s listening on http://%s\nvkey %s\n", w.Name(), ln.Addr(), w.VerifierKey())
	if ready != nil {
		ready(ln.Addr())
	}
	return witness.Serve(ctx, w, ln)
}

func openWitnessDB(ctx context.Context, path string) (*witness.DB, error) {
	if path == "" {
		return nil, errors.New("--db is required")
	}
	return witness.OpenDB(ctx, path, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func runWitnessAddLog(args []string) error {
	fs := newFlagSet("witness add-log", "--db witness.db (--origin ORIGIN --vkey VKEY | --sigsum-key HEX)")
	db := fs.String("db", "witness.db", "witness SQLite database (created if missing; may be in use by a running witness)")
	origin := fs.String("origin", "", "the log's checkpoint origin line")
	vkey := fs.String("vkey", "", "the log's note verifier key (name+hash+base64)")
	sigsumKey := fs.String("sigsum-key", "", "instead of --origin and --vkey: a Sigsum log's hex Ed25519 public key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *sigsumKey != "" {
		if *origin != "" || *vkey != "" {
			fmt.Fprintln(fs.Output(), "--sigsum-key replaces --origin and --vkey")
			return errUsage
		}
		var err error
		if *origin, *vkey, err = witness.SigsumLog(*sigsumKey); err != nil {
			return err
		}
	}
	if *origin == "" || *vkey == "" {
		fmt.Fprintln(fs.Output(), "--origin and --vkey (or --sigsum-key) are required")
		fs.Usage()
		return errUsage
	}
	ctx := context.Background()
	d, err := openWitnessDB(ctx, *db)
	if err != nil {
		return err
	}
	defer d.Close()
	created, err := d.AddLog(ctx, *origin, *vkey)
	if err != nil {
		return err
	}
	if created {
		fmt.Printf("added %s: witnessed from its first checkpoint (old 0)\n", *origin)
	} else {
		fmt.Printf("%s was known: key added (if new), state kept\n", *origin)
	}
	return nil
}

func runWitnessListLogs(args []string) error {
	return listWitnessDB(args, "witness list-logs", (*witness.DB).Logs)
}

func runWitnessListEvidence(args []string) error {
	return listWitnessDB(args, "witness list-evidence", (*witness.DB).Evidence)
}

// listWitnessDB prints what list returns from an existing witness database,
// one JSON object per line.
func listWitnessDB[T any](args []string, name string, list func(*witness.DB, context.Context) ([]T, error)) error {
	fs := newFlagSet(name, "--db witness.db")
	db := fs.String("db", "witness.db", "witness SQLite database")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat(*db); err != nil {
		return err // do not create a database just to list it
	}
	ctx := context.Background()
	d, err := openWitnessDB(ctx, *db)
	if err != nil {
		return err
	}
	defer d.Close()
	items, err := list(d, ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

func runWitnessRemoveLog(args []string) error {
	fs := newFlagSet("witness remove-log", "--db witness.db --origin ORIGIN [--vkey VKEY]")
	db := fs.String("db", "witness.db", "witness SQLite database")
	origin := fs.String("origin", "", "the log's checkpoint origin line")
	vkey := fs.String("vkey", "", "remove only this key (default: all keys, so the log gets 404)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *origin == "" {
		fmt.Fprintln(fs.Output(), "--origin is required")
		fs.Usage()
		return errUsage
	}
	if _, err := os.Stat(*db); err != nil {
		return err
	}
	ctx := context.Background()
	d, err := openWitnessDB(ctx, *db)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.RemoveLog(ctx, *origin, *vkey); err != nil {
		if errors.Is(err, witness.ErrUnknownLog) {
			return fmt.Errorf("%s has no such key in %s", *origin, *db)
		}
		return err
	}
	fmt.Printf("removed %s; its latest cosigned checkpoint is kept, and re-adding it continues from there\n", *origin)
	return nil
}

func runWitnessVKey(args []string) error {
	fs := newFlagSet("witness vkey", "--key witness.key")
	key := fs.String("key", "witness.key", "witness private key file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := witness.LoadKey(*key)
	if err != nil {
		return err
	}
	fmt.Println(s.VKey)
	return nil
}
