package witness

import (
	"context"
	"testing"

	"github.com/attestlog/attestlog/internal/httpfuzz"
	"github.com/attestlog/attestlog/witness/driver"
	"github.com/attestlog/attestlog/witness/protocol"
)

// FuzzAddCheckpoint feeds arbitrary bodies to add-checkpoint of a witness
// that knows one log, seeded with valid requests of that log. It checks
// that every answer is one the specification names (never a 500 or a
// panic), and that the witness never cosigns a tree head inconsistent with
// the log's one tree.
func FuzzAddCheckpoint(f *testing.F) {
	tw := newTestWitness(f)
	l, err := driver.NewLog("example.com/fuzz")
	if err != nil {
		f.Fatal(err)
	}
	if err := tw.AddLog(context.Background(), l.Origin, l.VKey); err != nil {
		f.Fatal(err)
	}
	l.Append(40)
	f.Add(l.Request(0, 7).Marshal())
	f.Add(l.Request(7, 13).Marshal())
	f.Add(l.Request(13, 40).Marshal())
	f.Add(l.Request(0, 0).Marshal())
	f.Add([]byte("old 0\n\n"))
	allowed := map[int]bool{200: true, 400: true, 403: true, 404: true, 409: true, 413: true, 422: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, _, resp := post(t, tw, body)
		if !allowed[code] {
			t.Fatalf("POST %q = %d %q", body, code, resp)
		}
		if code != 200 {
			return
		}
		req, err := protocol.ParseAddCheckpointRequest(body)
		if err != nil {
			t.Fatalf("200 for an unparseable body %q", body)
		}
		logs, err := tw.Logs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		root := l.Root(logs[0].Size)
		if logs[0].Size > 40 || logs[0].RootHash != b64(root[:]) {
			t.Fatalf("cosigned %q: state is now size %d root %s, not on the log's tree", req.Checkpoint, logs[0].Size, logs[0].RootHash)
		}
	})
}

// FuzzHandler: the witness's whole HTTP interface under any method, path,
// query and body answers without a server error.
func FuzzHandler(f *testing.F) {
	tw := newTestWitness(f)
	l, err := driver.NewLog("example.com/fuzz-handler")
	if err != nil {
		f.Fatal(err)
	}
	if err := tw.AddLog(context.Background(), l.Origin, l.VKey); err != nil {
		f.Fatal(err)
	}
	l.Append(3)
	h := tw.Handler()
	f.Add(byte(1), "/add-checkpoint", l.Request(0, 3).Marshal())
	f.Add(byte(0), "/add-checkpoint", []byte(nil))
	f.Add(byte(0), "/metrics", []byte(nil))
	f.Add(byte(0), "/", []byte(nil))
	f.Add(byte(0), "/logs", []byte(nil))
	f.Fuzz(func(t *testing.T, m byte, target string, body []byte) {
		httpfuzz.Serve(t, h, m, target, body)
	})
}
