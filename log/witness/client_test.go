package witness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClient runs the client against a real witness, one case per answer.
func TestClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newTestLog(t, "vitalproof.example/log", 20)
	w := newTestWitness(t, "", "", l)
	c := &Client{UserAgent: "vitalproof-test"}

	// 200: the lines verify, appended to the checkpoint.
	cp := l.checkpoint(t, 5)
	lines, err := c.AddCheckpoint(ctx, w.url, 0, nil, cp)
	if err != nil {
		t.Fatal(err)
	}
	verifyCosigned(t, append(cp, lines...), l.vkey, w.vkey)

	// A consistent extension, with the full endpoint URL.
	if _, err := c.AddCheckpoint(ctx, w.url+"/add-checkpoint", 5, l.proof(t, 5, 8), l.checkpoint(t, 8)); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		old       int
		proof     [][32]byte
		cp        []byte
		wantErr   error
		wantSize  uint64
		wantInErr string
	}{
		{"409 carries the size", 5, l.proof(t, 5, 13), l.checkpoint(t, 13), nil, 8, ""},
		{"409 on a fork", 8, nil, l.fork(t, 4, 4).checkpoint(t, 8), nil, 8, ""},
		{"404", 0, nil, newTestLog(t, "unknown.example/log", 5).checkpoint(t, 5), ErrUnknownLog, 0, "unknown log"},
		{"403", 0, nil, newTestLog(t, l.origin, 5).checkpoint(t, 5), ErrForbidden, 0, "trusted"},
		{"400", 13, nil, l.checkpoint(t, 8), ErrBadRequest, 0, "old size is larger"},
		{"422", 8, l.proof(t, 5, 13), l.checkpoint(t, 13), ErrInconsistent, 0, "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := c.AddCheckpoint(ctx, w.url, uint64(tt.old), tt.proof, tt.cp)
			if lines != nil {
				t.Errorf("got cosignature lines with error %v", err)
			}
			if tt.wantErr == nil {
				var ce *ConflictError
				if !errors.As(err, &ce) || ce.Size != tt.wantSize {
					t.Fatalf("got %v, want ConflictError{%d}", err, tt.wantSize)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("got %v, want %v quoting %q", err, tt.wantErr, tt.wantInErr)
			}
		})
	}

	if _, err := c.AddCheckpoint(ctx, w.url, 0, make([][32]byte, 64), cp); err == nil {
		t.Error("sent 64 proof hashes")
	}
	if _, err := c.AddCheckpoint(ctx, "ftp://witness.example", 0, nil, cp); err == nil {
		t.Error("accepted an ftp URL")
	}
}

// TestClientPrefix checks that the client appends /add-checkpoint to a
// submission prefix with a path.
func TestClientPrefix(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 5)
	w := newTestWitness(t, "", "", l)
	mux := http.NewServeMux()
	mux.Handle("/w1/", http.StripPrefix("/w1", w.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, prefix := range []string{srv.URL + "/w1", srv.URL + "/w1/"} {
		old := 0
		if prefix != srv.URL+"/w1" {
			old = 5
		}
		if _, err := (&Client{}).AddCheckpoint(context.Background(), prefix, uint64(old), nil, l.checkpoint(t, 5)); err != nil {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
}

// TestClientAnswers checks how the client reads answers that a conforming
// witness does not give.
func TestClientAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    int
		ctype   string
		body    string
		wantErr string
	}{
		{"500", 500, "text/plain", "database down\nmore", `answered 500 Internal Server Error: "database down"`},
		{"409 without content type", 409, "text/plain", "5\n", "409 without"},
		{"409 without newline", 409, SizeContentType, "5", "409 without"},
		{"409 not a number", 409, SizeContentType, "five\n", "409 without"},
		{"200 not signature lines", 200, "text/plain", "hello\n", "not note signature lines"},
		{"200 empty", 200, "text/plain", "", "not note signature lines"},
		{"200 too long", 200, "text/plain", strings.Repeat("— w AAAA\n", maxResponseBytes/9+1), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", tt.ctype)
				rw.WriteHeader(tt.code)
				fmt.Fprint(rw, tt.body)
			}))
			defer srv.Close()
			_, err := (&Client{}).AddCheckpoint(context.Background(), srv.URL, 0, nil, []byte("x"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
