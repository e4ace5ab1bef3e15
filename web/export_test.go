package web

import "testing"

// TestLogForPages is the web package's populated test log, for the
// external tests that put a real auditor beside it (package web_test may
// import auditor; package web may not, auditor imports web).
type TestLogForPages struct {
	*testLog
	// Dir holds policy.txt and witnesses.txt.
	Dir, WitnessPolicy string
	// Entries names the index of each kind of entry the log holds.
	Entries map[string]uint64
	// Versions are the release versions logged.
	Versions []string
}

func NewTestLogForPages(t *testing.T) *TestLogForPages {
	tl := newTestLogIndexed(t, true) // its pages include an index checkpoint's
	return &TestLogForPages{testLog: tl, Dir: tl.dir, WitnessPolicy: string(tl.witnessPolicy),
		Entries: map[string]uint64{
			"keyed release": tl.provRelease, "keyless release": tl.keylessRelease, "reproduction": tl.reproduction,
			"revocation": tl.revocation, "revoked release": tl.revokedRelease, "unreadable": tl.foreign,
		},
		Versions: []string{"2.0.0", "1.9.0", "6.6.6", "1.0.0", "3.0.0"},
	}
}
