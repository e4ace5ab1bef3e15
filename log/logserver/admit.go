package logserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/transparency-dev/tessera"

	"github.com/attestlog/attestlog/log/internal/index"
	"github.com/attestlog/attestlog/log/statement"
	"github.com/attestlog/attestlog/log/vindex"
	"github.com/attestlog/attestlog/policy"
	"github.com/attestlog/attestlog/policy/provenance"
)

// Admission errors. Each maps to one HTTP status in statusOf.
var (
	// ErrForbidden: the signer is not allowed by the policy, or no
	// signature verifies.
	ErrForbidden = errors.New("forbidden")
	// ErrTooLarge: the body exceeds statement.MaxEntrySize.
	ErrTooLarge = errors.New("statement too large")
	// ErrBadReference: a reproduction or revocation names an entry that
	// is not a release of this log, or whose digest differs.
	ErrBadReference = errors.New("bad entry reference")
	// ErrRetry: the referenced entry is sequenced but not yet integrated.
	ErrRetry = errors.New("try again shortly")
)

// Result is the outcome of a successful admission.
type Result struct {
	Index     uint64
	Duplicate bool
	Kind      statement.Kind
}

// ErrSlow: the statement was not appended within admitWait, the storage
// being slow or unreachable (a frontend cut off from its database or
// object store). Its append may still complete: a resubmission is then
// answered with its index, as a duplicate.
var ErrSlow = errors.New("storage too slow")

// admitWait bounds how long Admit takes, the append included, before it
// answers ErrSlow (503): a frontend cut off from its storage answers
// rather than hold each request until its TCP connections to the
// database time out (a quarter of an hour), or its client gives up not
// knowing why.
const admitWait = 10 * time.Second

// Admit checks a submitted statement against the policy and appends it.
// It returns the index as soon as Tessera has durably sequenced the entry.
// A statement already in the log (same payload, whatever its signature)
// returns the original index with Duplicate set and appends nothing. It
// gives up after admitWait with ErrSlow.
func (l *Log) Admit(ctx context.Context, body []byte) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, l.admitWait)
	defer cancel()
	res, err := l.admit(ctx, body)
	// Only an answer that is not final: a refusal (4xx) that came after
	// the deadline is still the refusal.
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && statusOf(err) >= 500 {
		return Result{Kind: res.Kind}, fmt.Errorf("%w: the statement was not appended within %v (%v); the append may still complete: retry, and a resubmission is answered with its index once it has", ErrSlow, l.admitWait, err)
	}
	return res, err
}

func (l *Log) admit(ctx context.Context, body []byte) (Result, error) {
	// A slot for the admission, taken before any work on the body: under
	// overload the 503 then costs the log nothing but the read, where
	// parsing and verifying first spent the CPU of a statement it turned
	// away (and the client sends it again). Wait a while for one rather
	// than answer 503 at once (the client would then wait a whole
	// Retry-After). Slots are shared fairly between clients (fairSlots).
	client := clientOf(ctx)
	if err := l.slots.acquire(ctx, client, pushbackWait); err != nil {
		if errors.Is(err, errNoSlot) {
			l.metrics.pushback.Inc()
			return Result{}, fmt.Errorf("%w: %d entries are waiting to be integrated; retry shortly", tessera.ErrPushback, l.cfg.Pushback)
		}
		return Result{}, err
	}
	slot := true
	defer func() {
		if slot {
			l.slots.release(client)
		}
	}()
	// Answer a statement already in the log before it is even parsed,
	// let alone verified: replaying the log's public entries costs the
	// envelope's decoding, the payload's hash and a lookup, not a parse
	// and a signature check. The envelope decoded here is the one the
	// statement is then parsed from (not decoded twice); a submission
	// that is no well-formed envelope (a Sigstore bundle, an index
	// checkpoint, garbage) is probed for a payload instead, then parsed
	// whole.
	var env *statement.Envelope
	h, ok := [32]byte{}, false
	if len(body) <= statement.MaxEntrySize && !statement.IsIndexCheckpoint(body) {
		if e, eh, err := statement.DecodeEnvelope(body); err == nil {
			env, h, ok = e, eh, true
		}
	}
	if env == nil {
		h, ok = statement.PayloadHashOf(body)
	}
	if ok {
		if idx, err := l.idx.ByPayload(ctx, h[:]); err == nil {
			return Result{Index: idx, Duplicate: true}, nil
		} else if !errors.Is(err, index.ErrNotFound) {
			return Result{}, err
		}
	}
	var p *statement.Parsed
	var err error
	if env != nil {
		p, err = statement.ParseEnvelope(env, h)
	}
	if env == nil || (err != nil && statement.IsBundle(body)) {
		// As ParseEntry: a bundle after an envelope that did not parse.
		p, err = l.parse(body)
	}
	if err != nil {
		return Result{}, err
	}
	// Duplicate detection: first what is in flight, then the index. The
	// pending check and insert below are one step under pendingMu, so two
	// concurrent submissions of one statement yield one entry. An entry
	// leaves pending only once it is in the index; if the indexer moved
	// on between our index lookup and taking the lock, look again.
	l.pendingMu.Lock()
	gen := l.indexGen
	inFlight := l.pending[p.PayloadHash]
	l.pendingMu.Unlock()
	if inFlight != nil {
		select {
		case <-inFlight.done:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
		if inFlight.err != nil {
			return Result{}, inFlight.err
		}
		return Result{Index: inFlight.idx.Index, Duplicate: true, Kind: p.Kind}, nil
	}
	if idx, err := l.idx.ByPayload(ctx, p.PayloadHash[:]); err == nil {
		return Result{Index: idx, Duplicate: true, Kind: p.Kind}, nil
	} else if !errors.Is(err, index.ErrNotFound) {
		return Result{}, err
	}
	p, who, err := l.authorizeParsed(ctx, body, p)
	if err != nil {
		var kind statement.Kind
		if p != nil {
			kind = p.Kind
		}
		return Result{Kind: kind}, err
	}
	entry, err := p.Entry()
	if err != nil {
		return Result{}, err
	}
	// Tessera's entry hashes its data for its identity (SHA-256, held
	// to that by TestTesseraIdentityIsSHA256); that is the entry's hash.
	te := tessera.NewEntry(entry)
	entryHash := [32]byte(te.Identity())
	l.pendingMu.Lock()
	pa, dup := l.pending[p.PayloadHash]
	if !dup && l.indexGen != gen {
		if idx, err := l.idx.ByPayload(ctx, p.PayloadHash[:]); err == nil {
			l.pendingMu.Unlock()
			return Result{Index: idx, Duplicate: true, Kind: p.Kind}, nil
		}
	}
	if !dup && len(l.pending) >= backlogFactor*int(l.cfg.Pushback) {
		// Tessera's POSIX and MySQL drivers do not push back themselves;
		// bound what waits for integration here, and (much more loosely)
		// what waits for the indexer after it.
		l.pendingMu.Unlock()
		l.metrics.pushback.Inc()
		return Result{Kind: p.Kind}, fmt.Errorf("%w: %d entries are waiting to be integrated; retry shortly", tessera.ErrPushback, l.cfg.Pushback)
	}
	if !dup {
		pa = &pendingAdd{done: make(chan struct{})}
		l.pending[p.PayloadHash] = pa
		// Hand the parsed statement to the indexer, which would otherwise
		// parse the entry again.
		l.parsed[entryHash] = admitted{p: p, signer: who, entry: entry, entryHash: entryHash}
	}
	l.pendingMu.Unlock()

	if !dup {
		// The append goes on without this request if it gives up
		// (admitWait), keeping its slot until it ends, so that pending
		// and the slots stay truthful.
		slot = false
		l.appends.Add(1)
		go func() {
			defer l.appends.Done()
			pa.idx, pa.err = l.append(ctx, p.PayloadHash, te)
			if pa.err == nil && !pa.idx.IsDup {
				// Tessera stored entry at this index: the follower may
				// take it from memory, unless it already read it back
				// from storage (and took its parse).
				l.pendingMu.Lock()
				if _, ok := l.parsed[entryHash]; ok {
					l.appended[pa.idx.Index] = entryHash
				}
				l.pendingMu.Unlock()
			}
			if errors.Is(pa.err, ErrUnavailable) {
				l.metrics.storageErrors.WithLabelValues("append").Inc()
			}
			close(pa.done)
			l.slots.release(client)
			// Wake the follower: the sooner the entry is indexed, the
			// sooner it leaves pending.
			select {
			case l.wake <- struct{}{}:
			default:
			}
			if pa.err != nil || pa.idx.IsDup {
				// Nothing appended, or another frontend appended it:
				// its entry, not ours, is what the indexer will see.
				l.pendingMu.Lock()
				delete(l.pending, p.PayloadHash)
				delete(l.parsed, entryHash)
				l.pendingMu.Unlock()
			}
		}()
	}
	select {
	case <-pa.done:
	case <-ctx.Done():
		return Result{Kind: p.Kind}, ctx.Err()
	}
	i, err := pa.idx, pa.err
	if err != nil {
		return Result{Kind: p.Kind}, err
	}
	return Result{Index: i.Index, Duplicate: dup || i.IsDup, Kind: p.Kind}, nil
}

// append appends entry (payload hash h), or finds that another frontend
// of the same database did. Outside pendingMu: Tessera's Add blocks while
// its previous batch is being written. Once started, an append completes
// even if the client goes away, so that pending stays truthful.
func (l *Log) append(ctx context.Context, h [32]byte, entry *tessera.Entry) (tessera.Index, error) {
	if l.claims == nil {
		i, err := l.appendEntry(context.WithoutCancel(ctx), h, entry)
		if err != nil {
			return tessera.Index{}, fmt.Errorf("%w: appending: %v", ErrUnavailable, err)
		}
		return i, nil
	}
	c, idx, dup, err := l.claims.claim(ctx, h)
	if err != nil {
		return tessera.Index{}, err
	}
	if dup {
		return tessera.Index{Index: idx, IsDup: true}, nil
	}
	stop := l.claims.hold(c)
	i, err := l.appendEntry(context.WithoutCancel(ctx), h, entry)
	stop()
	if err != nil {
		l.claims.release(ctx, c)
		return tessera.Index{}, fmt.Errorf("%w: appending: %v", ErrUnavailable, err)
	}
	l.claims.record(c, i.Index)
	return i, nil
}

// appendEntry is Tessera's Add of entry (payload hash h), after the
// append hook if there is one.
func (l *Log) appendEntry(ctx context.Context, h [32]byte, entry *tessera.Entry) (tessera.Index, error) {
	if l.appendHook != nil {
		if err := l.appendHook(ctx, h); err != nil {
			return tessera.Index{}, err
		}
	}
	return l.add(ctx, entry)()
}

// check is admission without the append: it parses body with
// statement.ParseEntry — the parser every reader uses — and checks it
// against the policy. The entry to store is the result's Entry(): the
// canonical envelope or bundle, which ParseEntry reads back to the same
// statement (FuzzAdmitReadBack holds it to that).
func (l *Log) check(ctx context.Context, body []byte) (*statement.Parsed, error) {
	p, _, err := l.checkSigner(ctx, body)
	return p, err
}

// signer is who admission found signed a statement (its policy key ID
// and name), handed to the indexer so that it does not verify the
// signature again; zero when admission did not record it.
type signer struct{ keyID, name string }

// admitted is a statement admitted and being appended, for the indexer:
// its parse, signer, and the entry stored with its SHA-256.
type admitted struct {
	p         *statement.Parsed
	signer    signer
	entry     []byte
	entryHash [32]byte
}

// checkSigner is check, also returning the signer it verified.
func (l *Log) checkSigner(ctx context.Context, body []byte) (*statement.Parsed, signer, error) {
	p, err := l.parse(body)
	if err != nil {
		return nil, signer{}, err
	}
	return l.authorizeParsed(ctx, body, p)
}

// parse reads a submission with statement.ParseEntry (size-checked),
// verifying nothing: enough to tell a duplicate.
func (l *Log) parse(body []byte) (*statement.Parsed, error) {
	if len(body) > statement.MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(body), statement.MaxEntrySize)
	}
	p, err := statement.ParseEntry(body)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// authorizeParsed checks the signer of body (parsed as p) against the
// policy. A Sigstore bundle (a statement signed keylessly by a CI
// identity) is first matched, unverified, against the policy's keyless
// operators, so that one from an identity the policy does not name costs
// no verification; then verified (which yields the statement to store).
func (l *Log) authorizeParsed(ctx context.Context, body []byte, p *statement.Parsed) (*statement.Parsed, signer, error) {
	if p.Envelope == nil {
		if err := provenance.PrefilterKeyless(body, &l.Policy().Provenance); err != nil {
			return p, signer{}, l.keylessErr(err)
		}
		p, err := l.keyless(ctx, body)
		return p, signer{}, err
	}
	var who signer
	err := l.authorize(ctx, p, &who)
	return p, who, err
}

// pendingAdd is a statement being appended; done is closed once idx and
// err are set.
type pendingAdd struct {
	done chan struct{}
	idx  tessera.Index
	err  error
}

// authorize checks the signer against the policy and, for reproductions
// and revocations, the release they name.
func (l *Log) authorize(ctx context.Context, p *statement.Parsed, who *signer) error {
	pol := l.Policy()
	switch p.Kind {
	case statement.KindRelease:
		k, ok := p.Envelope.VerifiedBy(policy.Keys(pol.Operators))
		if !ok {
			return fmt.Errorf("%w: the release is not signed by an operator key of the log's policy (add 'operator NAME KEY' to the policy, or sign with an operator key)", ErrForbidden)
		}
		if pr, ok := policy.Named(pol.Operators, k); ok {
			*who = signer{k.ID(), pr.Name}
		}
		// Build provenance, checked offline against the log's policy.
		if err := l.admitProvenance(p, l.now()); err != nil {
			return err
		}
		return l.checkNotRevoked(ctx, p)
	case statement.KindReproduction:
		k, ok := p.Envelope.VerifiedBy(policy.Keys(pol.Auditors))
		if !ok {
			return fmt.Errorf("%w: the reproduction is not signed by an auditor key of the log's policy", ErrForbidden)
		}
		if pr, ok := policy.Named(pol.Auditors, k); ok {
			*who = signer{k.ID(), pr.Name}
		}
		_, err := l.release(ctx, p.Ref)
		return err
	case statement.KindRevocation:
		rel, err := l.release(ctx, p.Ref)
		if err != nil {
			return err
		}
		// Every operator key that signed the release may revoke it (the
		// index records one of them; the entry says which all did).
		signers := []string{rel.SignerKey}
		if e, err := l.entry(ctx, p.Ref.Index); err == nil {
			if rp, err := statement.ParseEntry(e); err == nil {
				signers = pol.Signers(rp.Envelope)
			}
		}
		for _, s := range signers {
			if _, ok := pol.Revoker(p.Envelope, s); ok {
				return nil
			}
		}
		return fmt.Errorf("%w: a revocation must be signed by an operator that signed release %d or by an authority of the log's policy", ErrForbidden, p.Ref.Index)
	case statement.KindIndexCheckpoint:
		return fmt.Errorf("%w: index checkpoints are appended by the log itself, never submitted", ErrForbidden)
	}
	return fmt.Errorf("%w: unknown kind", statement.ErrMalformed)
}

// release returns the indexed release ref names, checking its digest.
func (l *Log) release(ctx context.Context, ref statement.EntryRef) (index.Entry, error) {
	e, err := l.idx.Get(ctx, ref.Index)
	if errors.Is(err, index.ErrNotFound) {
		if next, nerr := l.reader.NextIndex(ctx); nerr == nil && ref.Index < next {
			return index.Entry{}, fmt.Errorf("%w: entry %d is not yet integrated", ErrRetry, ref.Index)
		}
		return index.Entry{}, fmt.Errorf("%w: there is no entry %d", ErrBadReference, ref.Index)
	}
	if err != nil {
		return index.Entry{}, err
	}
	if e.Kind != statement.KindRelease {
		return index.Entry{}, fmt.Errorf("%w: entry %d is a %s, not a release", ErrBadReference, ref.Index, e.Kind)
	}
	if e.EntrySHA256 != ref.SHA256 {
		return index.Entry{}, fmt.Errorf("%w: entry %d has SHA-256 %s, the statement names %s", ErrBadReference, ref.Index, e.EntrySHA256, ref.SHA256)
	}
	return e, nil
}

// keyless verifies a Sigstore bundle carrying a release statement signed by
// a keyless operator of the policy, and its provenance. The entry to store
// is the returned statement's canonical bundle (provenance.VerifyKeylessEntry
// parses with statement.ParseEntry, as every reader does).
func (l *Log) keyless(ctx context.Context, body []byte) (*statement.Parsed, error) {
	pol := l.Policy()
	now := l.now()
	p, _, err := provenance.VerifyKeylessEntry(body, &pol.Provenance, now)
	if err != nil {
		return nil, l.keylessErr(err)
	}
	if err := l.admitProvenance(p, now); err != nil {
		return nil, err
	}
	// Only an authority revokes a keyless release, and nothing reinstates
	// one (a bundle carries no second signature).
	return p, l.checkNotRevoked(ctx, p)
}

// admitProvenance applies provenance.Admit, the one rule, under the log's
// policy: a broken policy is the server's fault (500), a rejection the
// submitter's (403).
func (l *Log) admitProvenance(p *statement.Parsed, now time.Time) error {
	err := provenance.Admit(p.Release, p.Statement.Subject, &l.Policy().Provenance, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, provenance.ErrConfig):
		return err
	case errors.Is(err, provenance.ErrRejected):
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	return fmt.Errorf("%w: provenance: %v", statement.ErrMalformed, err)
}

// keylessErr maps a keyless verification error to admission's.
func (l *Log) keylessErr(err error) error {
	switch {
	case errors.Is(err, provenance.ErrMalformed):
		return fmt.Errorf("%w: %v", statement.ErrMalformed, err)
	case errors.Is(err, provenance.ErrConfig):
		return err
	}
	return fmt.Errorf("%w: %v", ErrForbidden, err)
}

// checkNotRevoked refuses a release of a revoked identity: a revocation
// revokes the identity (the platform and every measurement the release
// fixes) for those its signer may revoke — an authority's for every
// operator, an operator's for its own releases (policy.Revokes, the rule
// clients apply) — so a new version with it is refused unless an
// authority of the policy signed the release too (reinstating it).
//
// A resubmission of a release already logged is not a new release: it is
// answered as the duplicate it is.
func (l *Log) checkNotRevoked(ctx context.Context, p *statement.Parsed) error {
	key, ok := vindex.IdentityKey(p.Release)
	if !ok {
		return nil
	}
	items := l.vidx.revocations(key)
	if items == nil {
		return nil
	}
	pol := l.Policy()
	auth, _ := pol.Reinstates(p.Envelope)
	me := policy.Release{Index: policy.NotLogged, Signers: pol.Signers(p.Envelope), Reinstated: auth.Name}
	var revs []string
	for _, it := range items {
		if it.Kind != vindex.KindRevocation {
			continue
		}
		r := policy.Revocation{Index: it.Index}
		if e, err := l.entry(ctx, it.Index); err == nil {
			if rp, err := statement.ParseEntry(e); err == nil && rp.Kind == statement.KindRevocation {
				r.Envelope = rp.Envelope
			}
		} else {
			return fmt.Errorf("reading revocation %d: %w", it.Index, err)
		}
		if ok, why := pol.Revokes(me, r); ok {
			revs = append(revs, why)
		}
	}
	if len(revs) == 0 {
		return nil
	}
	// Revoked: unless this is a resubmission of a release already logged.
	if _, err := l.idx.ByPayload(ctx, p.PayloadHash[:]); err == nil {
		return nil
	}
	l.pendingMu.Lock()
	_, inFlight := l.pending[p.PayloadHash]
	l.pendingMu.Unlock()
	if inFlight {
		return nil
	}
	return fmt.Errorf("%w: the release's identity (%s %s) was revoked (%s); a new release of it needs an authority's signature beside the operator's ('attestlog publish --authority-key FILE')", ErrForbidden, p.Release.Platform, p.Release.Measurements.Primary(), strings.Join(revs, "; "))
}
