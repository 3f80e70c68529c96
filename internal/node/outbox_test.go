package node

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
)

// TestOutboxAfterLedgerOutage runs the gateway and the ledger as separate
// nodes. With the ledger down, the gateway acknowledges a batch as pending
// and keeps its private row; once the ledger is back, the outbox forwards
// it and the row becomes logged with a receipt: nothing is lost.
func TestOutboxAfterLedgerOutage(t *testing.T) {
	e := newEnv(t)
	// Pin the ledger's gRPC address so the gateway can find it again.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	e.stop()
	ledgerCfg := *e.cfg
	ledgerCfg.Serve = []string{"ledger"}
	ledgerCfg.Ledger.GRPC = addr
	gatewayCfg := *e.cfg
	gatewayCfg.Serve = []string{"gateway"}
	gatewayCfg.Gateway.LedgerAddr = addr

	ctx := context.Background()
	gw, err := Start(ctx, &gatewayCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close(ctx)
	gwc := v1.NewGatewayServiceClient(e.dial(gw.GatewayGRPC))
	sctx, cancel := context.WithTimeout(e.as(ctx, e.submitterKey), 60*time.Second)
	defer cancel()
	req := e.batch(batchSpec{metric: "steps", start: hour(3), values: values(30, 40)})
	res, err := gwc.SubmitBatch(sctx, req)
	if err != nil {
		t.Fatalf("with the ledger down: %v", err)
	}
	if !res.Pending {
		t.Fatalf("with the ledger down the batch was answered %+v, want pending", res)
	}
	var state string
	if err := e.gatewayDB.QueryRow("SELECT state FROM batches").Scan(&state); err != nil || state != "pending" {
		t.Fatalf("private row state = %q, %v; want pending", state, err)
	}

	ledger, err := Start(ctx, &ledgerCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close(ctx)
	if _, err := os.Stat(e.cfg.Gateway.LedgerAPIKeyFile); err != nil {
		t.Fatal(err)
	}
	// The next batch of the same chain, sent before the outbox ran, waits
	// behind the pending one instead of being refused as out of order.
	req2 := e.batch(batchSpec{metric: "steps", start: hour(2), values: values(30, 40)})
	res2, err := gwc.SubmitBatch(sctx, req2)
	if err != nil {
		t.Fatalf("next batch while the first is pending: %v", err)
	}
	if !res2.Pending {
		t.Errorf("next batch while the first is pending = %+v, want pending", res2)
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		if err := gw.Gateway.FlushOutbox(context.Background()); err != nil {
			t.Logf("outbox: %v", err)
		}
		var pending int
		e.gatewayDB.QueryRow("SELECT COUNT(*) FROM batches WHERE state = 'pending'").Scan(&pending)
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending batches were not logged after the ledger came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := e.count(e.gatewayDB, "batches"); n != 2 {
		t.Errorf("private store holds %d batches, want 2", n)
	}
	again, err := gwc.SubmitBatch(sctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Pending || !again.Duplicate || again.Receipt == "" {
		t.Errorf("resubmission after the outage = %+v, want the stored receipt", again)
	}
}
