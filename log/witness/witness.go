// Package witness is a hospital's cosigning witness for the VitalProof log,
// speaking c2sp.org/tlog-witness with its state in MariaDB/MySQL, and the
// client a log uses to ask witnesses for cosignatures.
//
// A witness cosigns a log's checkpoint only if it extends the last one the
// witness cosigned for that log, so that a log cannot show two histories
// (a split view) to clients who require a quorum of witnesses.
//
// # add-checkpoint
//
// The witness serves, at the root of its address (the submission prefix),
//
//	POST /add-checkpoint
//
// whose body is an old size line, zero to [MaxProofLines] base64 RFC 6962
// consistency-proof hashes, an empty line and the log's signed checkpoint
// (c2sp.org/tlog-checkpoint in a c2sp.org/signed-note). For example, for a
// log whose leaf i is "leaf i", from the cosigned tree of size 5 to size 8,
// signed by vitalproof.example/log+5f3b12d7+AZ5FM+DhFkTHo+Y32JsgJY4uUo/0Q6bDPtRaxAfdosFI:
//
//	old 5
//	gxFfiUeVX6/cKifn9MCFS72Nonuxs+NAXbVxya+Nvho=
//	la3xW37122c4aouvvv7k0UVmKvpFB0DhhoVT6DSO06A=
//	brzFS2cQ7gYQp/yCzeUXE9soDj3IRRW96WMqGbZaC5M=
//	T2MQhKFXxU9U/Psj/164ZQxLoWDClbsTqYMrEJ1SZ34=
//
//	vitalproof.example/log
//	8
//	xcLIIO00L92ozolra5z1uMAKIcxLIHFMxuXTwFw1JAs=
//
//	— vitalproof.example/log XzsS18ey4YFFcxIyTO2wSnO0ggaO1eGRL8H1j46Siz90UDlInm4GyU+y4HVsgkt1fxQ5MgTbhYRPhs+EsVgILs1fZA4=
//
// It answers, checking in this order:
//
//	413  the body is larger than Config.MaxBodyBytes
//	400  the body is malformed (more than 63 proof lines, a non-canonical
//	     size or hash, no signed note)
//	404  the checkpoint's origin is not a log of the trusted-logs file
//	403  no signature verifies with a key trusted for that origin
//	     (signatures by other keys are ignored; a signature that claims a
//	     trusted key and does not verify is refused too)
//	400  the checkpoint is malformed, not canonical or has extension lines,
//	     or the old size is larger than its size
//	409  the checkpoint has the size of the last cosigned checkpoint but
//	     another root (kept as EvidenceFork), or the old size is not the
//	     size of the last cosigned checkpoint (0 if none); the body is that
//	     size in decimal and a newline, Content-Type text/x.tlog.size
//	422  the consistency proof from the last cosigned checkpoint does not
//	     verify; it must be empty when the old size is 0 or equals the
//	     checkpoint size (kept as EvidenceInconsistent when 0 < old < size)
//	200  the witness's cosignature line, "— <name> <base64>\n": a
//	     cosignature/v1 (c2sp.org/tlog-cosignature: key ID, timestamp,
//	     Ed25519 signature) on the checkpoint
//
// The new state is stored before the reply by compare-and-swap on the stored
// size and root, so two concurrent requests for the same log cannot both be
// cosigned, also when several witness processes share the database; the
// loser gets a 409. The cosignature is made before the swap and dropped if
// the swap fails.
//
// # Monitoring
//
//	GET /<origin hash>/checkpoint
//
// where <origin hash> is the lowercase hex SHA-256 of the origin (the
// monitoring URL of sunlight's witness and of later tlog-witness drafts),
// returns the last checkpoint the witness cosigned for that log: the
// checkpoint, the log signatures that verified and the cosignature, as a
// signed note (text/plain). It is 404 if the witness never cosigned for that
// origin. [OriginHash] computes the path element.
//
// # State
//
// [Open] creates the database and its two tables: witness_logs, one row per
// log with the last cosigned checkpoint, and witness_evidence, the refused
// requests that show misbehaviour, with the cosigned checkpoint they
// contradict ([Witness.Evidence] reads them). State survives restarts; logs
// removed from the trusted-logs file keep their rows.
package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"filippo.io/torchwood"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
)

// DefaultMaxBodyBytes is the default bound on an add-checkpoint body: 63
// proof lines and a checkpoint with the 100 signatures note.Open accepts
// fit with room to spare.
const DefaultMaxBodyBytes = 64 << 10

// SizeContentType is the Content-Type of a 409 body.
const SizeContentType = "text/x.tlog.size"

// Config configures a Witness.
type Config struct {
	// Signer makes the witness's cosignatures; see NewSigner. Required.
	Signer *torchwood.CosignatureSigner
	// Logs are the logs the witness cosigns for; see ParseLogs. Required,
	// with distinct origins.
	Logs []Log
	// DB holds the witness's state; it must come from Open. Required.
	DB *sql.DB
	// Logger gets a line per refused or failed request, never a request
	// body. Nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds add-checkpoint bodies (413 beyond). Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Registerer, if not nil, gets the witness's metrics:
	// vitalwitness_add_checkpoint_total{result}.
	Registerer prometheus.Registerer
}

// Witness is a tlog-witness server. It is safe for concurrent use.
type Witness struct {
	signer  *torchwood.CosignatureSigner
	logs    map[string]note.Verifiers
	store   *store
	log     *slog.Logger
	maxBody int64
	results *prometheus.CounterVec

	// testingOnlyBeforeSwap, if not nil, runs after a request passed every
	// check and was cosigned, before its state is stored. Tests use it to
	// race two requests.
	testingOnlyBeforeSwap func()
}

// New returns a Witness. It records each log of c.Logs in the database, at
// the empty tree, unless the database knows it already.
func New(ctx context.Context, c Config) (*Witness, error) {
	if c.Signer == nil || c.DB == nil {
		return nil, errors.New("couldn't create witness: Signer and DB are required")
	}
	if len(c.Logs) == 0 {
		return nil, errors.New("couldn't create witness: no trusted log")
	}
	w := &Witness{
		signer:  c.Signer,
		logs:    make(map[string]note.Verifiers, len(c.Logs)),
		store:   &store{db: c.DB},
		log:     c.Logger,
		maxBody: c.MaxBodyBytes,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vitalwitness_add_checkpoint_total",
			Help: "add-checkpoint requests by result: ok, too_large, malformed, unknown_log, forbidden, bad_checkpoint, conflict, fork, inconsistent, internal.",
		}, []string{"result"}),
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.maxBody <= 0 {
		w.maxBody = DefaultMaxBodyBytes
	}
	if c.Registerer != nil {
		if err := c.Registerer.Register(w.results); err != nil {
			return nil, fmt.Errorf("couldn't register witness metrics: %w", err)
		}
	}
	for _, l := range c.Logs {
		if _, ok := w.logs[l.Origin]; ok {
			return nil, fmt.Errorf("couldn't create witness: log %q is listed twice", l.Origin)
		}
		if len(l.Keys) == 0 {
			return nil, fmt.Errorf("couldn't create witness: log %q has no key", l.Origin)
		}
		for _, k := range l.Keys {
			if k.Name() != l.Origin {
				return nil, fmt.Errorf("couldn't create witness: key %q of log %q is not named after its origin", k.Name(), l.Origin)
			}
		}
		w.logs[l.Origin] = note.VerifierList(l.Keys...)
		if err := w.store.addLog(ctx, l.Origin); err != nil {
			return nil, fmt.Errorf("couldn't create witness: %w", err)
		}
	}
	return w, nil
}

// VerifierKey returns the witness's cosignature/v1 verifier key (vkey).
func (w *Witness) VerifierKey() string { return w.signer.Verifier().String() }

// Handler returns the witness's HTTP API, to be served at the root of its
// address: POST /add-checkpoint and GET /<origin hash>/checkpoint.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /add-checkpoint", http.MaxBytesHandler(http.HandlerFunc(w.serveAddCheckpoint), w.maxBody))
	mux.HandleFunc("GET /{hash}/checkpoint", w.serveCheckpoint)
	return mux
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			w.results.WithLabelValues("too_large").Inc()
			http.Error(rw, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.log.DebugContext(ctx, "couldn't read add-checkpoint body", "err", err)
		http.Error(rw, "couldn't read request body", http.StatusBadRequest)
		return
	}
	cosig, err := w.addCheckpoint(ctx, body)
	var conflict *conflictError
	switch {
	case err == nil:
		w.results.WithLabelValues("ok").Inc()
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := rw.Write(cosig); err != nil {
			w.log.DebugContext(ctx, "couldn't write add-checkpoint response", "err", err)
		}
	case errors.As(err, &conflict):
		result := "conflict"
		if conflict.fork {
			result = "fork"
		}
		w.results.WithLabelValues(result).Inc()
		rw.Header().Set("Content-Type", SizeContentType)
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", conflict.size)
	case errors.Is(err, errMalformed):
		w.refuse(rw, "malformed", err, http.StatusBadRequest)
	case errors.Is(err, errUnknownLog):
		w.refuse(rw, "unknown_log", err, http.StatusNotFound)
	case errors.Is(err, errForbidden):
		w.refuse(rw, "forbidden", err, http.StatusForbidden)
	case errors.Is(err, errBadCheckpoint), errors.Is(err, errOldTooLarge):
		w.refuse(rw, "bad_checkpoint", err, http.StatusBadRequest)
	case errors.Is(err, errProof):
		w.refuse(rw, "inconsistent", err, http.StatusUnprocessableEntity)
	default:
		w.results.WithLabelValues("internal").Inc()
		w.log.ErrorContext(ctx, "add-checkpoint failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
	}
}

func (w *Witness) refuse(rw http.ResponseWriter, result string, err error, code int) {
	w.results.WithLabelValues(result).Inc()
	http.Error(rw, err.Error(), code)
}

// addCheckpoint runs an add-checkpoint request and returns the cosignature
// line, or an error of request.go that serveAddCheckpoint maps to a status.
func (w *Witness) addCheckpoint(ctx context.Context, body []byte) ([]byte, error) {
	req, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	origin, _, _ := bytes.Cut(req.note, []byte("\n"))
	verifiers, ok := w.logs[string(origin)]
	if !ok {
		return nil, errUnknownLog
	}
	n, err := note.Open(req.note, verifiers)
	switch err.(type) {
	case nil:
	case *note.UnverifiedNoteError, *note.InvalidSignatureError:
		return nil, errForbidden
	default:
		return nil, errMalformed
	}
	c, err := torchwood.ParseCheckpoint(n.Text)
	// Cosign only a canonical checkpoint without extension lines, so that
	// the text we sign is the text the log signed.
	if err != nil || c.Origin != string(origin) || c.Extension != "" || c.String() != n.Text {
		return nil, errBadCheckpoint
	}
	size, root := uint64(c.N), [32]byte(c.Hash)
	l := w.log.With("origin", c.Origin, "old", req.oldSize, "size", size)

	known, err := w.store.load(ctx, c.Origin)
	if err != nil {
		return nil, err
	}
	evidence, err := check(known, req.oldSize, size, root, req.proof)
	if evidence != "" {
		l.ErrorContext(ctx, "log misbehaviour: refused a checkpoint signed by the log and kept it as evidence",
			"kind", evidence, "cosigned_size", known.size)
		e := Evidence{Kind: evidence, Request: body, Cosigned: known.note, CosignedSize: known.size, CosignedRoot: known.root}
		if serr := w.store.addEvidence(ctx, c.Origin, n.Text, e); serr != nil {
			l.ErrorContext(ctx, "couldn't keep evidence", "err", serr)
		}
	}
	if err != nil {
		l.InfoContext(ctx, "refused checkpoint", "err", err)
		return nil, err
	}

	// Sign the checkpoint with the log signatures that verified (and no
	// unverified one): that is the note monitors get. The cosignature is
	// its last line (note.Sign puts new signatures last).
	signed, err := note.Sign(&note.Note{Text: n.Text, Sigs: n.Sigs}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("couldn't cosign checkpoint: %w", err)
	}
	cosig := signed[bytes.LastIndexByte(signed[:len(signed)-1], '\n')+1:]
	if !bytes.HasPrefix(cosig, []byte("— "+w.signer.Name()+" ")) {
		return nil, errors.New("couldn't cosign checkpoint: unexpected note encoding")
	}
	if w.testingOnlyBeforeSwap != nil {
		w.testingOnlyBeforeSwap()
	}
	swapped, err := w.store.swap(ctx, c.Origin, known, state{size: size, root: root, note: signed})
	if err != nil {
		return nil, err
	}
	if !swapped {
		// Another request updated the log since load: refuse this one,
		// with the size that request stored.
		now, err := w.store.load(ctx, c.Origin)
		if err != nil {
			return nil, err
		}
		l.InfoContext(ctx, "refused checkpoint: lost a race with another request", "cosigned_size", now.size)
		return nil, &conflictError{size: now.size, fork: now.size == size && now.root != root}
	}
	l.InfoContext(ctx, "cosigned checkpoint")
	return cosig, nil
}

// OriginHash returns the lowercase hex SHA-256 of origin, which identifies
// the log in the monitoring URL GET /<origin hash>/checkpoint.
func OriginHash(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	p := r.PathValue("hash")
	h, err := hex.DecodeString(p)
	if err != nil || len(h) != sha256.Size || strings.ToLower(p) != p {
		http.Error(rw, "not an origin hash (lowercase hex SHA-256)", http.StatusNotFound)
		return
	}
	cp, err := w.store.checkpoint(r.Context(), [32]byte(h))
	if err != nil {
		w.log.ErrorContext(r.Context(), "couldn't serve checkpoint", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	if cp == nil {
		http.Error(rw, "no cosigned checkpoint for this origin", http.StatusNotFound)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Content-Length", strconv.Itoa(len(cp)))
	rw.Write(cp)
}

// Evidence returns the evidence of misbehaviour the witness kept for the
// log with the given origin, oldest first.
func (w *Witness) Evidence(ctx context.Context, origin string) ([]Evidence, error) {
	return w.store.evidence(ctx, origin)
}
