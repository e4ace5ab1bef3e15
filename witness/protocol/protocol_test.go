package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const (
	h1 = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
	h2 = "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk="
	h3 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	cp = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

func TestParseAddCheckpointRequest(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantOld   uint64
		wantProof int
		wantErr   bool
	}{
		{"spec example shape", "old 20852014\n" + h1 + "\n" + h2 + "\n\n" + cp, 20852014, 2, false},
		{"old 0 no proof", "old 0\n\n" + cp, 0, 0, false},
		{"max old", "old 9223372036854775807\n\n" + cp, 9223372036854775807, 0, false},
		{"old too large for int64", "old 9223372036854775808\n\n" + cp, 0, 0, true},
		{"leading zero", "old 01\n\n" + cp, 0, 0, true},
		{"double zero", "old 00\n\n" + cp, 0, 0, true},
		{"plus sign", "old +1\n\n" + cp, 0, 0, true},
		{"negative", "old -1\n\n" + cp, 0, 0, true},
		{"two spaces", "old  1\n\n" + cp, 0, 0, true},
		{"tab", "old\t1\n\n" + cp, 0, 0, true},
		{"trailing space", "old 1 \n\n" + cp, 0, 0, true},
		{"uppercase", "OLD 1\n\n" + cp, 0, 0, true},
		{"no old line", h1 + "\n\n" + cp, 0, 0, true},
		{"no empty line", "old 1\n" + cp, 0, 0, true},
		{"nothing after empty line", "old 1\n\n", 0, 0, true},
		{"empty", "", 0, 0, true},
		{"CRLF", "old 1\r\n\r\n" + cp, 0, 0, true},
		{"proof CR", "old 1\n" + h1 + "\r\n\n" + cp, 0, 0, true},
		{"proof short", "old 1\n" + h1[:40] + "\n\n" + cp, 0, 0, true},
		{"proof url-safe alphabet", "old 1\n" + strings.ReplaceAll(h3, "/", "_") + "\n\n" + cp, 0, 0, true},
		{"proof unpadded", "old 1\n" + strings.TrimSuffix(h1, "=") + "\n\n" + cp, 0, 0, true},
		{"proof non-canonical padding bits", "old 1\n" + h1[:42] + "x=\n\n" + cp, 0, 0, true},
		{"63 proof lines", "old 1\n" + strings.Repeat(h1+"\n", 63) + "\n" + cp, 1, 63, false},
		{"64 proof lines", "old 1\n" + strings.Repeat(h1+"\n", 64) + "\n" + cp, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseAddCheckpointRequest([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseAddCheckpointRequest(%q) = %+v, want error", tt.body, req)
				}
				if !errors.Is(err, ErrMalformedRequest) {
					t.Fatalf("ParseAddCheckpointRequest(%q) error %v, want ErrMalformedRequest", tt.body, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAddCheckpointRequest(%q) = %v, want success", tt.body, err)
			}
			if req.OldSize != tt.wantOld || len(req.Proof) != tt.wantProof {
				t.Errorf("ParseAddCheckpointRequest(%q) = old %d, %d proof lines, want %d, %d", tt.body, req.OldSize, len(req.Proof), tt.wantOld, tt.wantProof)
			}
			if string(req.Checkpoint) != cp {
				t.Errorf("checkpoint = %q, want %q", req.Checkpoint, cp)
			}
			if got := req.Marshal(); string(got) != tt.body {
				t.Errorf("Marshal() = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestParseConflictBody(t *testing.T) {
	tests := []struct {
		body    string
		want    uint64
		wantErr bool
	}{
		{"0\n", 0, false},
		{"42\n", 42, false},
		{"42", 0, true},
		{"042\n", 0, true},
		{"42\n\n", 0, true},
		{"x\n", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseConflictBody([]byte(tt.body))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseConflictBody(%q) = %d, %v; want %d, error %v", tt.body, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestOriginHash(t *testing.T) {
	// printf 'example.com/behind-the-sofa' | sha256sum
	const want = "5fd2dc0beb4ce54da5050cf6d5c75248b023abad441c3cecde3976fbe9da4fe4"
	if got := OriginHash("example.com/behind-the-sofa"); got != want {
		t.Errorf("OriginHash(%q) = %q, want %q", "example.com/behind-the-sofa", got, want)
	}
}

// FuzzParseAddCheckpointRequest checks that the parser never panics, and
// that whatever it accepts is canonical: marshalling the result gives back
// the exact body, and the limits of the specification hold.
func FuzzParseAddCheckpointRequest(f *testing.F) {
	f.Add([]byte("old 20852014\n" + h1 + "\n" + h2 + "\n\n" + cp))
	f.Add([]byte("old 0\n\n" + cp))
	f.Add([]byte("old 1\n" + h1 + "\r\n\n" + cp))
	f.Add([]byte("old 01\n\nx"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > DefaultMaxRequestBytes {
			return // the server's MaxBytesHandler answers these before parsing
		}
		req, err := ParseAddCheckpointRequest(body)
		if err != nil {
			if req != nil || !errors.Is(err, ErrMalformedRequest) {
				t.Fatalf("error %v with request %v", err, req)
			}
			return
		}
		if len(req.Proof) > MaxProofLines {
			t.Fatalf("accepted %d proof lines", len(req.Proof))
		}
		if req.OldSize > 1<<63-1 {
			t.Fatalf("accepted old size %d", req.OldSize)
		}
		if got := req.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("not canonical: Marshal() = %q, body %q", got, body)
		}
	})
}
