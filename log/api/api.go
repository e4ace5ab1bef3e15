// Package api holds the JSON wire types of the log's HTTP API, shared by
// the server and its clients.
package api

import (
	"encoding/json"
	"errors"
	"time"
)

// ExplorerPath is where a log serves its web explorer (web's
// DefaultExplorerPrefix), which the auditor's dashboard links releases to.
const ExplorerPath = "/ui/"

// AddResponse is the JSON body of a successful POST /add.
type AddResponse struct {
	Index     uint64 `json:"index"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// EntryInfo is the JSON description of an indexed entry (GET /entry/N and
// the items of GET /lookup).
type EntryInfo struct {
	Index         uint64    `json:"index"`
	Kind          string    `json:"kind"` // release, reproduction, revocation, or unreadable
	Signer        string    `json:"signer"`
	SignerKeyID   string    `json:"signer_key_id"`
	EntrySHA256   string    `json:"entry_sha256"`
	Platform      string    `json:"platform,omitempty"`
	Version       string    `json:"version,omitempty"`
	Measurement   string    `json:"measurement,omitempty"`
	Time          time.Time `json:"time,omitzero"`
	Release       *uint64   `json:"release,omitempty"` // of a reproduction or revocation
	Outcome       string    `json:"outcome,omitempty"` // of a reproduction
	HasProvenance bool      `json:"has_provenance"`
	// Problem says why an entry of kind "unreadable" — in the tree, but
	// not a statement the log's parser reads — cannot be read.
	Problem string `json:"problem,omitempty"`
	// Reason and Advisory are a revocation's (also on the revocations
	// listed with a release).
	Reason   string `json:"reason,omitempty"`
	Advisory string `json:"advisory,omitempty"`
	// Reproductions and Revocations of a release.
	Reproductions []EntryInfo `json:"reproductions,omitempty"`
	Revocations   []EntryInfo `json:"revocations,omitempty"`
}

// MarshalJSON writes has_provenance only for a release, where it means
// something.
func (e EntryInfo) MarshalJSON() ([]byte, error) {
	type plain EntryInfo
	o := struct {
		plain
		HasProvenance *bool `json:"has_provenance,omitempty"`
	}{plain: plain(e)}
	if e.Kind == "release" {
		v := e.HasProvenance
		o.HasProvenance = &v
	}
	return json.Marshal(o)
}

// LookupResponse is the JSON body of GET /lookup.
type LookupResponse struct {
	Query   string      `json:"query"`
	Entries []EntryInfo `json:"entries"`
	// IndexProof is the log's index proof for the query
	// (attestlog.dev/vindex-proof/v2): what Entries says, proven, and for
	// no entries a proof of absence. Empty while no index checkpoint is
	// witnessed. Entries is the log's word; decide on the proof.
	IndexProof string `json:"index_proof,omitempty"`
}

// UnreadableResponse is the JSON body of GET /unreadable: the entries the
// index recorded as unreadable (oldest first, at most 100) and how many
// there are. An honest log built by this code has none: admission and the
// indexer parse with the same code.
type UnreadableResponse struct {
	Total   int         `json:"total"`
	Entries []EntryInfo `json:"entries"`
}

// CheckpointRecord is a checkpoint the log published, as it saw it.
type CheckpointRecord struct {
	Size   uint64
	Note   []byte // the signed note with its cosignatures
	SeenAt time.Time
}

// Errors of the log's read API, shared by the server and what renders its
// answers (the explorer), so that neither imports the other.
var (
	// ErrNotFound: no such entry, measurement or tile.
	ErrNotFound = errors.New("not found")
	// ErrNotWitnessed: the entry exists but no published (witnessed)
	// checkpoint covers it yet.
	ErrNotWitnessed = errors.New("not yet covered by a witnessed checkpoint")
)
