package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Errors AddCheckpoint returns for the witness's refusals, one per status
// code of c2sp.org/tlog-witness; a 409 is a *ConflictError instead. The
// returned error wraps one of them and quotes the witness's message.
var (
	// ErrUnknownLog is a 404: the witness does not know the checkpoint's origin.
	ErrUnknownLog = errors.New("witness does not know the log")
	// ErrForbidden is a 403: no signature on the checkpoint verifies with a
	// key the witness trusts for the log.
	ErrForbidden = errors.New("witness does not trust the checkpoint's signatures")
	// ErrBadRequest is a 400: the request or the checkpoint is malformed, or
	// the old size is larger than the checkpoint's.
	ErrBadRequest = errors.New("witness refused a malformed request")
	// ErrInconsistent is a 422: the consistency proof does not verify
	// against the last checkpoint the witness cosigned.
	ErrInconsistent = errors.New("witness refused the consistency proof")
)

// ConflictError is a 409: the old size of the request is not the size of
// the last checkpoint the witness cosigned for the log, Size. Retry from
// Size with a consistency proof from Size. If Size is the size of the
// checkpoint sent, the witness cosigned another root hash for it: a fork.
type ConflictError struct {
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness has cosigned the log at tree size %d", e.Size)
}

// StatusError is an answer of the witness that the protocol does not
// define, such as a 500.
type StatusError struct {
	Code int
	// Message is the start of the response body.
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness answered %d %s: %q", e.Code, http.StatusText(e.Code), e.Message)
}

// maxResponseBytes bounds what the client reads of an answer. A 200 is a
// few cosignature lines.
const maxResponseBytes = 64 << 10

// Client asks witnesses for cosignatures with c2sp.org/tlog-witness
// add-checkpoint. The zero value is ready to use.
type Client struct {
	// HTTPClient sends the requests. Nil means http.DefaultClient; bound
	// the time of a request with ctx or with the client's Timeout.
	HTTPClient *http.Client
	// UserAgent is sent if not empty.
	UserAgent string
}

// AddCheckpoint sends a signed checkpoint to the witness at url with a
// consistency proof from tree size oldSize (empty if oldSize is 0), and
// returns the witness's cosignature lines: one or more note signature lines
// ("— <name> <base64>\n") that the caller appends to the checkpoint's
// signatures after checking them with the witness's key.
//
// url is the witness's submission prefix, the URL of a tlog-policy
// "witness" line, to which the client appends /add-checkpoint; a URL whose
// path already ends in /add-checkpoint (as transparency-dev/formats'
// witness.Endpoints returns) is used as is.
//
// A refusal is a *ConflictError (409) or wraps ErrUnknownLog (404),
// ErrForbidden (403), ErrBadRequest (400) or ErrInconsistent (422); another
// answer is a *StatusError.
func (c *Client) AddCheckpoint(ctx context.Context, url string, oldSize uint64, proof [][32]byte, signedCheckpoint []byte) ([]byte, error) {
	if len(proof) > MaxProofLines {
		return nil, fmt.Errorf("couldn't send checkpoint: %d proof hashes, the protocol allows %d", len(proof), MaxProofLines)
	}
	endpoint, err := addCheckpointURL(url)
	if err != nil {
		return nil, err
	}
	body := formatRequest(oldSize, proof, signedCheckpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("couldn't make add-checkpoint request: %w", err)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't send checkpoint to witness: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read witness answer: %w", err)
	}
	if len(answer) > maxResponseBytes {
		return nil, fmt.Errorf("couldn't read witness answer: longer than %d bytes", maxResponseBytes)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if !validSignatureLines(answer) {
			return nil, errors.New("couldn't read witness answer: not note signature lines")
		}
		return answer, nil
	case http.StatusConflict:
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		s, ok := strings.CutSuffix(string(answer), "\n")
		size, okSize := parseSize(s)
		if mt != SizeContentType || !ok || !okSize {
			return nil, errors.New("couldn't read witness answer: 409 without a text/x.tlog.size body")
		}
		return nil, &ConflictError{Size: size}
	case http.StatusNotFound:
		return nil, refusal(ErrUnknownLog, answer)
	case http.StatusForbidden:
		return nil, refusal(ErrForbidden, answer)
	case http.StatusBadRequest:
		return nil, refusal(ErrBadRequest, answer)
	case http.StatusUnprocessableEntity:
		return nil, refusal(ErrInconsistent, answer)
	default:
		return nil, &StatusError{Code: resp.StatusCode, Message: message(answer)}
	}
}

func addCheckpointURL(prefix string) (string, error) {
	u, err := url.Parse(prefix)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("couldn't send checkpoint: witness URL is not an http(s) URL")
	}
	if strings.HasSuffix(u.Path, "/add-checkpoint") {
		return u.String(), nil
	}
	return u.JoinPath("add-checkpoint").String(), nil
}

// validSignatureLines reports whether b is one or more signed-note
// signature lines.
func validSignatureLines(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return false
	}
	for _, l := range bytes.Split(b[:len(b)-1], []byte("\n")) {
		name, sig, ok := bytes.Cut(bytes.TrimPrefix(l, []byte("— ")), []byte(" "))
		if !bytes.HasPrefix(l, []byte("— ")) || !ok || len(name) == 0 || len(sig) == 0 {
			return false
		}
	}
	return true
}

// message is what an error quotes of a witness's answer: its first line,
// at most 200 bytes.
func message(answer []byte) string {
	m, _, _ := strings.Cut(string(answer), "\n")
	if len(m) > 200 {
		m = m[:200]
	}
	return m
}

func refusal(sentinel error, answer []byte) error {
	return fmt.Errorf("%w: %q", sentinel, message(answer))
}
