package monitor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vitalproof/vitalproof/log"
)

// Ledger is what the monitor reads of a log: the ledger's REST API (see
// [NewHTTPLedger]) or, in tests, a log served from memory. Implementations
// must be safe for concurrent use: the monitor downloads several pages at
// once.
type Ledger interface {
	// Checkpoint returns the latest published checkpoint: a signed note
	// carrying the log's signature and the witnesses' cosignatures.
	Checkpoint(ctx context.Context) ([]byte, error)
	// ConsistencyProof returns the RFC 6962 proof that the tree of size
	// from is a prefix of the tree of size to, 0 < from <= to.
	ConsistencyProof(ctx context.Context, from, to uint64) ([]log.Hash, error)
	// Leaves returns up to count consecutive leaves from index start, at
	// least one when the log has a leaf at start.
	Leaves(ctx context.Context, start, count uint64) ([][]byte, error)
}

// Limits of the answers [HTTPLedger] reads.
const (
	// MaxCheckpointSize bounds a checkpoint note.
	MaxCheckpointSize = 64 << 10
	// maxProofAnswer bounds a consistency proof's JSON: 63 hashes of 44
	// base64 characters and the sizes fit well within it.
	maxProofAnswer = 16 << 10
	// maxLeavesAnswer bounds a page of leaves' JSON: 1000 leaves of up to
	// a few KiB each, base64-encoded.
	maxLeavesAnswer = 32 << 20
	// maxProofHashes is the longest consistency proof in a tree of at most
	// 2^63 leaves (two per level, at most).
	maxProofHashes = 128
	// maxErrorMessage bounds the server's error message an error quotes.
	maxErrorMessage = 200
)

// DefaultHTTPTimeout bounds one request of an [HTTPLedger] whose client
// has no timeout of its own.
const DefaultHTTPTimeout = time.Minute

// HTTPLedger reads a VitalProof ledger over its REST API:
//
//	GET /api/v1/log/checkpoint.txt                  the latest published checkpoint, as it is
//	GET /api/v1/log/consistency?from=F&to=T         {"from": "F", "to": "T", "hashes": [base64, ...]}
//	GET /api/v1/log/entries?start=S&count=N         {"start": "S", "entries": [base64, ...]}
//
// The JSON is the ledger's protojson (64-bit integers as strings, bytes
// as standard base64); numbers are accepted unquoted too.
type HTTPLedger struct {
	base string
	hc   *http.Client
}

var _ Ledger = (*HTTPLedger)(nil)

// NewHTTPLedger returns a client of the ledger whose REST API is at
// baseURL (such as "https://ledger.example"), using hc (nil: a client with
// a [DefaultHTTPTimeout] timeout).
func NewHTTPLedger(baseURL string, hc *http.Client) (*HTTPLedger, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("couldn't use ledger URL %q: want http:// or https:// and a host", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	return &HTTPLedger{base: strings.TrimSuffix(baseURL, "/"), hc: hc}, nil
}

// Checkpoint implements [Ledger.Checkpoint].
func (l *HTTPLedger) Checkpoint(ctx context.Context) ([]byte, error) {
	return l.get(ctx, "/api/v1/log/checkpoint.txt", MaxCheckpointSize)
}

// ConsistencyProof implements [Ledger.ConsistencyProof].
func (l *HTTPLedger) ConsistencyProof(ctx context.Context, from, to uint64) ([]log.Hash, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	b, err := l.get(ctx, "/api/v1/log/consistency?"+q.Encode(), maxProofAnswer)
	if err != nil {
		return nil, err
	}
	return decodeConsistency(b, from, to)
}

// Leaves implements [Ledger.Leaves].
func (l *HTTPLedger) Leaves(ctx context.Context, start, count uint64) ([][]byte, error) {
	q := url.Values{"start": {strconv.FormatUint(start, 10)}, "count": {strconv.FormatUint(count, 10)}}
	b, err := l.get(ctx, "/api/v1/log/entries?"+q.Encode(), maxLeavesAnswer)
	if err != nil {
		return nil, err
	}
	return decodeLeaves(b, start)
}

// StatusError is an HTTP answer other than 200 OK.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's error message, shortened.
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("the ledger answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("the ledger answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// get fetches path and returns the body of a 200 answer of at most limit
// bytes. Its errors name the path.
func (l *HTTPLedger) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, err // names the URL
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: couldn't read the answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %w", path, &StatusError{Status: resp.StatusCode, Message: errorMessage(b)})
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: answer larger than %d bytes", path, limit)
	}
	return b, nil
}

// errorMessage returns the message of a grpc-gateway error body, or the
// body's first line, printable and shortened.
func errorMessage(b []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	msg := ""
	if json.Unmarshal(b, &e) == nil {
		msg = e.Message
	} else {
		msg, _, _ = strings.Cut(string(b), "\n")
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(msg))
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage] + "..."
	}
	return msg
}

var errMalformedAnswer = errors.New("malformed answer")

// decodeConsistency parses a GetConsistencyProofResponse for from and to.
func decodeConsistency(b []byte, from, to uint64) ([]log.Hash, error) {
	var r struct {
		From   *jsonUint64 `json:"from"`
		To     *jsonUint64 `json:"to"`
		Hashes []string    `json:"hashes"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformedAnswer, err)
	}
	if (r.From != nil && uint64(*r.From) != from) || (r.To != nil && uint64(*r.To) != to) {
		return nil, fmt.Errorf("%w: a proof between other tree sizes", errMalformedAnswer)
	}
	if len(r.Hashes) > maxProofHashes {
		return nil, fmt.Errorf("%w: more than %d hashes", errMalformedAnswer, maxProofHashes)
	}
	p := make([]log.Hash, len(r.Hashes))
	for i, s := range r.Hashes {
		h, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(h) != len(log.Hash{}) {
			return nil, fmt.Errorf("%w: hash %d is not 32 bytes of base64", errMalformedAnswer, i)
		}
		p[i] = log.Hash(h)
	}
	return p, nil
}

// decodeLeaves parses a ListEntriesResponse starting at start.
func decodeLeaves(b []byte, start uint64) ([][]byte, error) {
	var r struct {
		Start   *jsonUint64 `json:"start"`
		Entries []string    `json:"entries"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformedAnswer, err)
	}
	if r.Start != nil && uint64(*r.Start) != start {
		return nil, fmt.Errorf("%w: leaves from index %d", errMalformedAnswer, uint64(*r.Start))
	}
	leaves := make([][]byte, len(r.Entries))
	for i, s := range r.Entries {
		v, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: leaf %d is not base64", errMalformedAnswer, start+uint64(i))
		}
		leaves[i] = v
	}
	return leaves, nil
}

// jsonUint64 is a protojson uint64: a decimal string, or a number.
type jsonUint64 uint64

func (u *jsonUint64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("malformed integer")
	}
	*u = jsonUint64(v)
	return nil
}
