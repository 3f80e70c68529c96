package api

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
)

func TestLedgerClient(t *testing.T) {
	e := newTestEnv(t, HTTPOptions{Ledger: true})
	ctx := t.Context()
	c := NewLedgerClient(e.conn, hospitalKey)

	res, err := c.SubmitEntries(ctx, [][]byte{[]byte("e1"), []byte("bad"), []byte("conflict"), []byte("pending"), []byte("broken")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 {
		t.Fatalf("%d results", len(res))
	}
	if r := res[0]; r.Err != nil || r.Index != 1 || r.LeafHash != wearables.LeafHash([]byte("e1")) || r.Pending || r.Duplicate || !strings.Contains(string(r.Receipt), "index 1") {
		t.Errorf("accepted entry: %+v", r)
	}
	wantErr := []struct {
		i      int
		kind   provenance.Kind
		field  string
		reason string
	}{
		{1, provenance.KindInvalid, "entries[1]", "malformed entry"},
		{2, provenance.KindConflict, "entries[2].seq", "not the next link of the device's chain: expected sequence number 2"},
		{4, provenance.KindInternal, "", "internal error"},
	}
	for _, w := range wantErr {
		r := res[w.i]
		if r.Err == nil || r.Err.Kind != w.kind || r.Err.Field != w.field || r.Err.Reason != w.reason {
			t.Errorf("entry %d: %+v; want %v %q %q", w.i, r.Err, w.kind, w.field, w.reason)
		}
	}
	if r := res[3]; r.Err != nil || !r.Pending || len(r.Receipt) != 0 {
		t.Errorf("pending entry: %+v", r)
	}

	tests := []struct {
		name   string
		call   func() error
		kind   provenance.Kind
		field  string
		reason string // substring
	}{
		{"whole call unavailable", func() error {
			_, err := c.SubmitEntries(ctx, [][]byte{[]byte("outage")})
			return err
		}, provenance.KindUnavailable, "", "log is unavailable"},
		{"pending receipt", func() error {
			_, err := c.Receipt(ctx, 99)
			return err
		}, provenance.KindPending, "index", "entry is not yet integrated"},
		{"no receipt", func() error {
			_, err := c.Receipt(ctx, 12)
			return err
		}, provenance.KindNotFound, "index", "no entry at this index"},
		{"refused credentials", func() error {
			_, err := NewLedgerClient(e.conn, "stolen").SubmitEntries(ctx, [][]byte{[]byte("e2")})
			return err
		}, provenance.KindUnauthenticated, "", "the ledger refused this gateway's API key (unknown API key)"},
		{"wrong role", func() error {
			_, err := NewLedgerClient(e.conn, adminKey).SubmitEntries(ctx, [][]byte{[]byte("e2")})
			return err
		}, provenance.KindPermission, "", "the ledger refused this gateway's API key"},
		{"ledger down", func() error {
			_, err := NewLedgerClient(deadConn(t), hospitalKey).SubmitEntries(ctx, [][]byte{[]byte("e2")})
			return err
		}, provenance.KindUnavailable, "", "the ledger is unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			pe, ok := err.(*provenance.Error)
			if !ok {
				t.Fatalf("error %T %v", err, err)
			}
			if pe.Kind != tt.kind || pe.Field != tt.field || !strings.Contains(pe.Reason, tt.reason) {
				t.Errorf("got %v %q %q; want %v %q %q", pe.Kind, pe.Field, pe.Reason, tt.kind, tt.field, tt.reason)
			}
		})
	}

	r, err := c.Receipt(ctx, 0)
	if err != nil || string(r) != "c2sp.org/tlog-proof@v1\nindex 0\n" {
		t.Errorf("Receipt(0) = %q, %v", r, err)
	}
}

// deadConn returns a client conn whose server is gone.
func deadConn(t *testing.T) *grpc.ClientConn {
	lis := bufconn.Listen(1 << 10)
	lis.Close()
	conn, err := grpc.NewClient("passthrough:///dead",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
