package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// testEnv is a real gRPC server (on an in-memory listener) running both
// services over fakes, and the REST handler over a client conn to it.
type testEnv struct {
	ledger  *fakeLedger
	gateway *fakeGateway
	conn    *grpc.ClientConn
	http    *httptest.Server
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestEnv(t testing.TB, opts HTTPOptions) *testEnv {
	t.Helper()
	e := &testEnv{ledger: newFakeLedger(), gateway: &fakeGateway{}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	s := NewGRPCServer(WithLogger(logger))
	RegisterLedger(s, e.ledger)
	RegisterGateway(s, e.gateway, nil)
	lis := bufconn.Listen(1 << 20)
	go s.Serve(lis)
	t.Cleanup(s.Stop)

	dial := append(DialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("passthrough:///bufnet", dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.conn = conn

	h, err := NewHTTPHandler(t.Context(), conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(h)
	t.Cleanup(e.http.Close)
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a REST request; key is the API key ("" for none), a string body
// is sent as is, and a nil body sends none.
func (e *testEnv) do(t testing.TB, method, path, key, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// errorBody is the REST form of an error.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type       string            `json:"@type"`
		Reason     string            `json:"reason"`
		Domain     string            `json:"domain"`
		Metadata   map[string]string `json:"metadata"`
		RetryDelay string            `json:"retry_delay"`
	} `json:"details"`
}

func parseError(t *testing.T, b []byte) errorBody {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		t.Fatalf("error body %q is not JSON: %v", b, err)
	}
	return eb
}

// reason returns the reason and field of the body's ErrorInfo.
func (eb errorBody) reason() (reason, field string) {
	for _, d := range eb.Details {
		if d.Type == "type.googleapis.com/google.rpc.ErrorInfo" && d.Domain == errorDomain {
			return d.Reason, d.Metadata["field"]
		}
	}
	return "", ""
}
