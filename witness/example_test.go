package witness_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/attestlog/attestlog/witness"
	"github.com/attestlog/attestlog/witness/protocol"
)

// Open a witness from its configuration file, add a log, and serve it.
func ExampleOpen() {
	ctx := context.Background()
	cfg, err := witness.LoadConfig("witness.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	w, err := witness.Open(ctx, cfg, slog.Default())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer w.Close()
	// Logs can also be added while the witness serves, from another process
	// (attestlog witness add-log).
	if err := w.AddLog(ctx, "example.com/log", "example.com/log+8d3ac5b1+AbD5qB3dtUMk2ZmnLuMWz0S8ZO+yvtY2GM2FsXp7VXSW"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println("witness vkey for log policies:", w.VerifierKey())
	http.ListenAndServe(cfg.Listen, w.Handler())
}

// A log asks a witness to cosign its new checkpoint, retrying from the size
// the witness reports when its guess of the old size was wrong.
func ExampleClient_AddCheckpoint() {
	ctx := context.Background()
	c := &protocol.Client{SubmissionPrefix: "https://witness.example.com"}
	var checkpoint []byte                                   // the log's signed checkpoint at size N
	proofFrom := func(old uint64) [][32]byte { return nil } // the log's consistency proof from old to N
	old := uint64(0)
	for range 2 {
		cosig, err := c.AddCheckpoint(ctx, &protocol.AddCheckpointRequest{OldSize: old, Proof: proofFrom(old), Checkpoint: checkpoint})
		var ce *protocol.ConflictError
		if errors.As(err, &ce) {
			old = ce.Size
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		// Append the cosignature line to the checkpoint.
		checkpoint = append(checkpoint, cosig...)
		return
	}
}
