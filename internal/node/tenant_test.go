package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
)

// admitManufacturer proposes a manufacturer and has two hospitals admit
// it; it returns the manufacturer's API key.
func (e *env) admitManufacturer(id string, voters ...hospitalAccount) string {
	e.t.Helper()
	_, key := e.admitManufacturerWithKey(id, voters...)
	return key
}

// admitManufacturerWithKey is admitManufacturer also returning the
// manufacturer's signer.
func (e *env) admitManufacturerWithKey(id string, voters ...hospitalAccount) (note.Signer, string) {
	e.t.Helper()
	ctx := context.Background()
	skey, vkey, _ := note.GenerateKey(rand.Reader, id)
	signer, _ := note.NewSigner(skey)
	_, pub, _ := wearables.ParseVerifierKey(vkey)
	prop, err := e.ledger.ProposeManufacturer(e.as(ctx, e.adminKey), &v1.ProposeManufacturerRequest{ManufacturerId: id, Name: id, PublicKey: pub})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range voters {
		b, err := (&provenance.Approval{Manufacturer: id, Action: provenance.ActionAdmit, PublicKey: pub, Hospital: h.signer.Name(), Time: time.Now().Unix()}).Sign(h.signer)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.ledger.ApproveManufacturer(e.as(ctx, h.apiKey), &v1.ApproveManufacturerRequest{ManufacturerId: id, Approval: string(b)}); err != nil {
			e.t.Fatal(err)
		}
	}
	return signer, prop.ApiKey
}

type hospitalAccount struct {
	signer note.Signer
	apiKey string
}

// TestTenantsAndHistory checks who may read a device and its history (the
// operator, its manufacturer, the hospital it is assigned to; everyone
// else is told it does not exist, as for an unknown device), that the
// history's pages carry leaves that verify against the published
// checkpoint, and that the leaf index, rebuilt from the log, reports a row
// removed from it.
func TestTenantsAndHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	skey, err := loadOrCreateSigner(e.cfg.Gateway.HospitalKeyFile, testHospital)
	if err != nil {
		t.Fatal(err)
	}
	hA := hospitalAccount{skey, e.hospitalKey}
	sB, kB := e.registerHospital("hospital-b")
	hB := hospitalAccount{sB, kB}
	maker := e.admitManufacturer("test-maker", hA, hB)
	rival := e.admitManufacturer("rival-maker", hA, hB)
	for h := 6; h >= 1; h-- {
		if _, err := e.gateway.SubmitBatch(e.as(ctx, e.submitterKey), e.batch(batchSpec{metric: "heart-rate", start: hour(h), values: values(3, 70)})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.node.Ledger.IndexLog(ctx); err != nil {
		t.Fatal(err)
	}

	type access struct {
		who  string
		key  string
		code codes.Code
	}
	matrix := []access{
		{"operator", e.adminKey, codes.OK},
		{"the device's hospital", e.hospitalKey, codes.OK},
		{"the device's manufacturer", maker, codes.OK},
		{"another hospital", kB, codes.NotFound},
		{"another manufacturer", rival, codes.NotFound},
		{"anonymous", "", codes.Unauthenticated},
		{"a gateway's key", e.submitterKey, codes.Unauthenticated},
	}
	notFound := ""
	for _, a := range matrix {
		c := ctx
		if a.key != "" {
			c = e.as(ctx, a.key)
		}
		_, err1 := e.ledger.GetDevice(c, &v1.GetDeviceRequest{DeviceId: testDevice})
		_, err2 := e.ledger.GetDeviceHistory(c, &v1.GetDeviceHistoryRequest{DeviceId: testDevice})
		for _, err := range []error{err1, err2} {
			if status.Code(err) != a.code {
				t.Errorf("%s reading the device: %v; want %v", a.who, err, a.code)
			}
		}
		if a.code == codes.NotFound {
			notFound = status.Convert(err2).Message()
			// The answer is the one for a device that does not exist.
			_, err := e.ledger.GetDeviceHistory(c, &v1.GetDeviceHistoryRequest{DeviceId: "no-such-device"})
			if status.Code(err) != codes.NotFound || status.Convert(err).Message() != notFound {
				t.Errorf("%s: unknown device answered %v; cross-tenant answered %q", a.who, err, notFound)
			}
		}
	}

	// Pages, newest first, then oldest first; every leaf verifies.
	var newest []uint64
	token := ""
	var treeSize uint64
	for {
		h, err := e.ledger.GetDeviceHistory(e.as(ctx, maker), &v1.GetDeviceHistoryRequest{DeviceId: testDevice, PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		root := checkpointRoot(t, h.Checkpoint)
		treeSize = h.TreeSize
		for _, it := range h.Items {
			lh := tlog.RecordHash(it.Leaf)
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, it.Index, h.TreeSize, lh[:], it.Inclusion, root); err != nil {
				t.Errorf("history leaf %d does not verify: %v", it.Index, err)
			}
			newest = append(newest, it.Index)
		}
		if token = h.NextPageToken; token == "" {
			break
		}
	}
	if len(newest) != 7 {
		t.Fatalf("history has %d leaves %v; want the registration and 6 entries", len(newest), newest)
	}
	for i := 1; i < len(newest); i++ {
		if newest[i] >= newest[i-1] {
			t.Errorf("history not newest first: %v", newest)
		}
	}
	old, err := e.ledger.GetDeviceHistory(e.as(ctx, e.hospitalKey), &v1.GetDeviceHistoryRequest{DeviceId: testDevice, Order: "oldest", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(old.Items) != 7 || old.Items[0].Kind != "registration" || old.Items[0].Index != newest[6] || old.NextPageToken != "" {
		t.Errorf("oldest first: %d items, first %v, token %q", len(old.Items), old.Items[0], old.NextPageToken)
	}

	// The index rebuilt from the log matches; a removed row is reported
	// and repaired.
	rep, err := e.ledger.CheckIndex(e.as(ctx, e.adminKey), &v1.CheckIndexRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Leaves != treeSize || len(rep.Missing)+len(rep.Wrong)+len(rep.Extra) != 0 {
		t.Fatalf("index check of an intact index: %v", rep)
	}
	victim := newest[2]
	if _, err := e.ledgerDB.Exec("DELETE FROM leaf_index WHERE leaf_index = ?", victim); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ledgerDB.Exec("UPDATE leaf_index SET device_id = 'someone-else' WHERE leaf_index = ?", newest[3]); err != nil {
		t.Fatal(err)
	}
	rep, err = e.ledger.CheckIndex(e.as(ctx, e.adminKey), &v1.CheckIndexRequest{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Missing) != 1 || rep.Missing[0].Index != victim || rep.Missing[0].DeviceId != testDevice || rep.Missing[0].Manufacturer != "test-maker" ||
		len(rep.Wrong) != 1 || rep.Wrong[0].Index != newest[3] || !rep.Repaired {
		t.Fatalf("index check after tampering: %v; want row %d missing and row %d wrong, repaired", rep, victim, newest[3])
	}
	if rep, err = e.ledger.CheckIndex(e.as(ctx, e.adminKey), &v1.CheckIndexRequest{}); err != nil || len(rep.Missing)+len(rep.Wrong) != 0 {
		t.Errorf("index after repair: %v, %v", rep, err)
	}
	if _, err := e.ledger.CheckIndex(e.as(ctx, e.hospitalKey), &v1.CheckIndexRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a hospital checking the index = %v; want PermissionDenied", err)
	}
}

// checkpointRoot returns the root hash of a checkpoint note's text.
func checkpointRoot(t *testing.T, cp string) []byte {
	t.Helper()
	lines := strings.Split(cp, "\n")
	if len(lines) < 3 {
		t.Fatalf("malformed checkpoint %q", cp)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	return root
}
