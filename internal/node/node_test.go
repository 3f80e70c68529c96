package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
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
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/wearables"
)

// TestSubmitReceiptVerifies drives the whole path: device-signed batches
// through the gateway's gRPC API, the ledger, embedded Trillian, and back as
// receipts that verify offline, with our verifier and with a client that
// uses only the published formats.
func TestSubmitReceiptVerifies(t *testing.T) {
	e := newEnv(t)
	ctx := e.as(context.Background(), e.submitterKey)
	var results []*v1.BatchResult
	for h := 3; h >= 1; h-- {
		for _, m := range []string{"heart-rate", "spo2"} {
			v := uint32(72)
			if m == "spo2" {
				v = 975
			}
			res, err := e.gateway.SubmitBatch(ctx, e.batch(batchSpec{metric: m, start: hour(h), values: values(60, v)}))
			if err != nil {
				t.Fatalf("SubmitBatch(%s, %d): %v", m, h, err)
			}
			if res.Pending || res.Receipt == "" {
				t.Fatalf("SubmitBatch(%s, %d) answered no receipt: %+v", m, h, res)
			}
			if res.Attestation != "device" || res.Readings != 60 {
				t.Errorf("result = %+v, want attestation device and 60 readings", res)
			}
			results = append(results, res)
		}
	}
	policy := e.policy()
	seen := map[uint64]bool{}
	for _, res := range results {
		if seen[res.Index] {
			t.Errorf("index %d answered twice", res.Index)
		}
		seen[res.Index] = true
		v, err := receipt.Verify(policy, []byte(res.Receipt))
		if err != nil {
			t.Fatalf("receipt %d does not verify: %v", res.Index, err)
		}
		if v.Index != res.Index {
			t.Errorf("receipt says index %d, result %d", v.Index, res.Index)
		}
		checkReceiptIndependently(t, policy, []byte(res.Receipt))
		// The entry served by the ledger is the receipt's.
		got, err := e.ledger.GetEntry(context.Background(), &v1.GetEntryRequest{Index: res.Index})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Entry, v.Entry) {
			t.Errorf("GetEntry(%d) differs from the receipt's entry", res.Index)
		}
	}

	// Consistency between the checkpoint before and after more entries.
	cp1, size1, err := e.nodeCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gateway.SubmitBatch(ctx, e.batch(batchSpec{metric: "glucose", start: hour(1), values: values(10, 80)})); err != nil {
		t.Fatal(err)
	}
	cp2, size2, err := e.nodeCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if size2 != size1+1 {
		t.Fatalf("tree grew from %d to %d, want one entry", size1, size2)
	}
	cons, err := e.ledger.GetConsistencyProof(context.Background(), &v1.GetConsistencyProofRequest{From: size1, To: size2})
	if err != nil {
		t.Fatal(err)
	}
	r1 := openCheckpoint(t, policy, cp1)
	r2 := openCheckpoint(t, policy, cp2)
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, cons.Hashes, r1[:], r2[:]); err != nil {
		t.Errorf("consistency proof %d→%d does not verify: %v", size1, size2, err)
	}
	// A tampered proof must not verify.
	if len(cons.Hashes) > 0 {
		bad := append([][]byte(nil), cons.Hashes...)
		bad[0] = append([]byte(nil), bad[0]...)
		bad[0][0] ^= 1
		if proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, bad, r1[:], r2[:]) == nil {
			t.Error("tampered consistency proof verifies")
		}
	}
	// Inclusion proofs at an older tree size verify against that size's root.
	inc, err := e.ledger.GetInclusionProof(context.Background(), &v1.GetInclusionProofRequest{Index: 0, TreeSize: size1})
	if err != nil {
		t.Fatal(err)
	}
	entry0, err := e.ledger.GetEntry(context.Background(), &v1.GetEntryRequest{Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	lh := tlog.RecordHash(entry0.Entry)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 0, size1, lh[:], inc.Hashes, r1[:]); err != nil {
		t.Errorf("inclusion of entry 0 at size %d does not verify: %v", size1, err)
	}
}

// openCheckpoint verifies a checkpoint with x/mod's note package and the
// log key from the policy, and returns its root hash.
func openCheckpoint(t *testing.T, policy []byte, cp string) [32]byte {
	t.Helper()
	vkey := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(policy), "\n", 2)[0], "log "))
	v, err := note.NewVerifier(strings.Fields(vkey)[0])
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(cp), note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not verify with x/mod/sumdb/note: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 3 {
		t.Fatalf("malformed checkpoint text")
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		t.Fatalf("malformed checkpoint root")
	}
	return [32]byte(root)
}

// checkReceiptIndependently parses a C2SP tlog-proof by hand and verifies it
// with x/mod/sumdb/note and transparency-dev/merkle only.
func checkReceiptIndependently(t *testing.T, policy, rcpt []byte) {
	t.Helper()
	head, cp, ok := strings.Cut(string(rcpt), "\n\n")
	if !ok {
		t.Fatal("receipt has no blank line before its checkpoint")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		t.Fatalf("receipt header = %q", lines[0])
	}
	var entry []byte
	var index uint64
	var hashes [][]byte
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "extra "):
			b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "extra "))
			if err != nil {
				t.Fatal(err)
			}
			entry = b
		case strings.HasPrefix(l, "index "):
			n, err := strconv.ParseUint(strings.TrimPrefix(l, "index "), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			index = n
		default:
			b, err := base64.StdEncoding.DecodeString(l)
			if err != nil || len(b) != 32 {
				t.Fatalf("receipt proof line %q", l)
			}
			hashes = append(hashes, b)
		}
	}
	root := openCheckpoint(t, policy, cp)
	n, _ := note.Open([]byte(cp), nil)
	_ = n
	size, err := strconv.ParseUint(strings.Split(cp, "\n")[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	lh := tlog.RecordHash(entry)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, lh[:], hashes, root[:]); err != nil {
		t.Fatalf("receipt for index %d does not verify independently: %v", index, err)
	}
	if _, err := wearables.ParseEntry(entry); err != nil {
		t.Fatalf("receipt's extra is not an entry: %v", err)
	}
}

// TestRestartKeepsState: a restart keeps the tree, the entries, the
// private rows and idempotency.
func TestRestartKeepsState(t *testing.T) {
	e := newEnv(t)
	ctx := e.as(context.Background(), e.submitterKey)
	req := e.batch(batchSpec{metric: "glucose", start: hour(2), values: values(12, 110)})
	first, err := e.gateway.SubmitBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	size := e.treeSize()
	rows := e.count(e.gatewayDB, "batches")
	e.restart()
	ctx = e.as(context.Background(), e.submitterKey)
	if got := e.treeSize(); got != size {
		t.Fatalf("tree size after restart = %d, want %d", got, size)
	}
	again, err := e.gateway.SubmitBatch(ctx, req)
	if err != nil {
		t.Fatalf("resubmission after restart: %v", err)
	}
	if again.Index != first.Index || !again.Duplicate {
		t.Errorf("resubmission = index %d duplicate %v, want index %d duplicate", again.Index, again.Duplicate, first.Index)
	}
	if got := e.treeSize(); got != size {
		t.Errorf("resubmission grew the tree to %d", got)
	}
	if got := e.count(e.gatewayDB, "batches"); got != rows {
		t.Errorf("private rows after restart = %d, want %d", got, rows)
	}
	// The ledger too answers a resubmitted entry with its index.
	lres, err := e.ledger.SubmitEntries(e.as(context.Background(), e.hospitalKey), &v1.SubmitEntriesRequest{Entries: [][]byte{[]byte(req.Entry)}})
	if err != nil {
		t.Fatal(err)
	}
	if r := lres.Results[0]; r.Index != first.Index || !r.Duplicate {
		t.Errorf("ledger resubmission = %+v, want index %d duplicate", r, first.Index)
	}
	// The chain goes on where it was.
	next, err := e.gateway.SubmitBatch(ctx, e.batch(batchSpec{metric: "glucose", start: hour(1), values: values(12, 115)}))
	if err != nil {
		t.Fatalf("next link after restart: %v", err)
	}
	if next.Index != uint64(size) {
		t.Errorf("next entry index = %d, want %d", next.Index, size)
	}
}

// TestBadInputs: every bad input gets the right status and a message naming
// the problem, and writes nothing anywhere.
func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	other, _ := e.registerDevice("other-band", testHospital)
	_ = other
	// A second hospital with its own device.
	hv := readFile(t, e.cfg.Gateway.HospitalKeyFile+".vkey")
	_, hpub, _ := wearables.ParseVerifierKey(hv)
	if _, err := e.ledger.RegisterHospital(e.as(context.Background(), e.adminKey), &v1.RegisterHospitalRequest{HospitalId: "elsewhere", Name: "Elsewhere", PublicKey: hpub}); err != nil {
		t.Fatal(err)
	}
	// An inactive device.
	retired, _ := e.registerDevice("retired-band", testHospital)
	if _, err := e.ledgerDB.Exec("UPDATE devices SET status = 'inactive' WHERE id = 'retired-band'"); err != nil {
		t.Fatal(err)
	}
	skey, _, _ := note.GenerateKey(rand.Reader, testDevice)
	impostor, _ := note.NewSigner(skey)
	gskey, _, _ := note.GenerateKey(rand.Reader, "ghost-band")
	ghost, _ := note.NewSigner(gskey)
	submitter := e.submitterKey
	// One good entry first, so that chain checks have something to refer to.
	if _, err := e.gateway.SubmitBatch(e.as(context.Background(), submitter), e.batch(batchSpec{metric: "heart-rate", start: hour(5), values: values(5, 70)})); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		key   string
		spec  batchSpec
		code  codes.Code
		field string
	}{
		{"unknown device", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true,
			signer: ghost,
			header: func(h *wearables.EntryHeader) { h.DeviceID = "ghost-band"; h.Seq = 1; h.Prev = [32]byte{} }}, codes.NotFound, "device"},
		{"inactive device", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true,
			signer: retired,
			header: func(h *wearables.EntryHeader) { h.DeviceID = "retired-band"; h.Seq = 1; h.Prev = [32]byte{} }}, codes.PermissionDenied, "device"},
		{"entry for another hospital", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true,
			header: func(h *wearables.EntryHeader) { h.Hospital = "elsewhere" }}, codes.PermissionDenied, "hospital"},
		{"bad signature", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true, signer: impostor}, codes.InvalidArgument, "signature"},
		{"commitment does not open", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true,
			readings: func(r []wearables.Reading) []wearables.Reading { r[2].Value++; return r }}, codes.InvalidArgument, "commitment"},
		{"not the next link", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true,
			header: func(h *wearables.EntryHeader) { h.Seq += 1 }}, codes.AlreadyExists, "seq"},
		{"wrong prev hash", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true,
			header: func(h *wearables.EntryHeader) { h.Prev[0] ^= 1 }}, codes.AlreadyExists, "prev"},
		{"window before the previous link's", submitter, batchSpec{metric: "heart-rate", start: hour(5).Add(30 * time.Minute), values: values(5, 70), noAdvance: true}, codes.AlreadyExists, "window"},
		{"unknown metric", submitter, batchSpec{metric: "cholesterol", start: hour(4), values: values(5, 70), noAdvance: true}, codes.InvalidArgument, "entry"},
		{"value out of range", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: []uint32{70, 71, 999, 72}, noAdvance: true}, codes.InvalidArgument, "readings[2]"},
		{"reading outside the window", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true,
			header: func(h *wearables.EntryHeader) { h.WindowEnd = h.WindowStart + 120 }}, codes.InvalidArgument, "readings[2]"},
		{"reading in the future", submitter, batchSpec{metric: "heart-rate", start: hour(-1), values: values(5, 70), noAdvance: true}, codes.InvalidArgument, "readings[0]"},
		{"empty batch", submitter, batchSpec{metric: "heart-rate", start: hour(4), values: values(1, 70), noAdvance: true,
			readings: func([]wearables.Reading) []wearables.Reading { return nil }}, codes.InvalidArgument, "readings"},
		{"oversized batch", submitter, batchSpec{metric: "heart-rate", start: hour(100), values: values(wearables.MaxBatchReadings+1, 70), noAdvance: true,
			header: func(h *wearables.EntryHeader) { h.WindowEnd = h.WindowStart + 60*(wearables.MaxBatchReadings+2) }}, codes.InvalidArgument, "count"},
		{"wrong API key", "vpk_not-a-key", batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true}, codes.Unauthenticated, ""},
		{"missing API key", "", batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true}, codes.Unauthenticated, ""},
		{"hospital key at the gateway", e.hospitalKey, batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true}, codes.Unauthenticated, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := e.treeSize()
			entries := e.count(e.ledgerDB, "entries")
			batches := e.count(e.gatewayDB, "batches")
			ctx := context.Background()
			if tc.key != "" {
				ctx = e.as(ctx, tc.key)
			}
			_, err := e.gateway.SubmitBatch(ctx, e.batch(tc.spec))
			st, _ := status.FromError(err)
			if st.Code() != tc.code {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tc.code)
			}
			if tc.field != "" && !strings.Contains(st.Message(), tc.field) {
				t.Errorf("message %q does not name %q", st.Message(), tc.field)
			}
			if e.count(e.ledgerDB, "entries") != entries || e.count(e.gatewayDB, "batches") != batches {
				t.Errorf("a refused batch left rows behind")
			}
			if got := e.treeSize(); got != size {
				t.Errorf("a refused batch grew the tree from %d to %d", size, got)
			}
		})
	}
	// Malformed input that never becomes an entry.
	for _, tc := range []struct {
		name string
		req  *v1.SubmitBatchRequest
	}{
		{"malformed entry", &v1.SubmitBatchRequest{Entry: "not an entry", Salt: make([]byte, 32), Readings: []*v1.Reading{{Offset: 0, Value: 70}}}},
		{"salt not a field element", func() *v1.SubmitBatchRequest {
			r := e.batch(batchSpec{metric: "heart-rate", start: hour(4), values: values(5, 70), noAdvance: true})
			r.Salt = bytes.Repeat([]byte{0xff}, 32)
			return r
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.gateway.SubmitBatch(e.as(context.Background(), submitter), tc.req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v, want InvalidArgument", status.Code(err))
			}
		})
	}
}

// TestCanary: a distinctive reading value and patient identifier never
// appear in a leaf, the ledger's tables, a log line or an error message.
func TestCanary(t *testing.T) {
	e := newEnv(t)
	ctx := e.as(context.Background(), e.submitterKey)
	const patient = "PATIENT-CANARY-7731"
	const canaryValue = 173 // bpm; and its fixed-point form is the same
	req := e.batch(batchSpec{metric: "heart-rate", start: hour(3), values: []uint32{canaryValue, canaryValue, canaryValue}})
	req.PatientRef = patient
	res, err := e.gateway.SubmitBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// A refused batch carrying the canaries: out of range, with a patient.
	bad := e.batch(batchSpec{metric: "heart-rate", start: hour(2), values: []uint32{canaryValue, 98765}, noAdvance: true})
	bad.PatientRef = patient
	_, err = e.gateway.SubmitBatch(ctx, bad)
	if err == nil {
		t.Fatal("out-of-range batch accepted")
	}
	salt := base64.StdEncoding.EncodeToString(req.Salt)
	saltHex := fmt.Sprintf("%x", req.Salt)
	forbidden := []string{patient, salt, saltHex, "98765"}
	check := func(where, s string) {
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("%s contains %q", where, f)
			}
		}
	}
	check("error message", err.Error())
	check("logs", e.logs.String())
	leaf, err := e.ledger.GetEntry(context.Background(), &v1.GetEntryRequest{Index: res.Index})
	if err != nil {
		t.Fatal(err)
	}
	check("leaf", string(leaf.Entry))
	if bytes.Contains(leaf.Entry, req.Salt) {
		t.Error("leaf contains the salt's bytes")
	}
	check("receipt", res.Receipt)
	// Every table of the ledger, dumped as text.
	for _, table := range []string{"hospitals", "api_keys", "devices", "chains", "entries"} {
		rows, err := e.ledgerDB.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
					if bytes.Contains(b, req.Salt) {
						t.Errorf("ledger table %s holds the salt", table)
					}
				}
				check("ledger table "+table, s)
			}
		}
		rows.Close()
	}
	// The hospital's own store does keep them: that is where they belong.
	var got string
	if err := e.gatewayDB.QueryRow("SELECT patient_ref FROM batches WHERE leaf_index = ?", res.Index).Scan(&got); err != nil || got != patient {
		t.Errorf("private store patient_ref = %q, %v; want the canary", got, err)
	}
}

// TestFHIR: a device-attested Bundle and plain Observations go through the
// gateway's FHIR path; the entries record their attestation level and their
// receipts verify.
func TestFHIR(t *testing.T) {
	e := newEnv(t)
	ctx := e.as(context.Background(), e.submitterKey)
	sim, err := wearables.NewSimulator(testDevice, testHospital, e.device, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.Batch("glucose", hour(3), time.Hour, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := wearables.ExportFHIR(b, "Patient/fhir-test")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.gateway.SubmitFHIR(ctx, &v1.SubmitFHIRRequest{Resource: bundle})
	if err != nil {
		t.Fatalf("attested Bundle: %v", err)
	}
	if len(res.Results) != 1 || res.Results[0].Attestation != "device" || res.Results[0].Readings != 12 {
		t.Fatalf("attested Bundle results = %+v", res.Results)
	}
	observations := func(h int) []byte {
		t.Helper()
		grp, err := sim.Observations("heart-rate", hour(h), time.Hour, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		grp.PatientRef = "Patient/fhir-test"
		obs, err := wearables.ExportObservations(grp)
		if err != nil {
			t.Fatal(err)
		}
		return obs
	}
	var obs []byte
	for i := 0; i < 2; i++ { // two hours: the gateway's own chain goes on
		obs = observations(3 - i)
		res, err = e.gateway.SubmitFHIR(ctx, &v1.SubmitFHIRRequest{Resource: obs})
		if err != nil {
			t.Fatalf("plain Observations (%d): %v", i, err)
		}
		if len(res.Results) != 1 || res.Results[0].Attestation != "gateway" {
			t.Fatalf("plain Observations results = %+v", res.Results)
		}
		v, err := receipt.Verify(e.policy(), []byte(res.Results[0].Receipt))
		if err != nil {
			t.Fatal(err)
		}
		entry, err := wearables.ParseEntry(v.Entry)
		if err != nil {
			t.Fatal(err)
		}
		hv := readFile(t, e.cfg.Gateway.HospitalKeyFile+".vkey")
		verifier, err := note.NewVerifier(hv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wearables.VerifyEntry(v.Entry, verifier); err != nil {
			t.Errorf("gateway-attested entry is not signed by the hospital's key: %v", err)
		}
		if entry.Header.Seq != uint64(i+1) || entry.Header.Attestation != wearables.AttestGateway {
			t.Errorf("gateway entry %d: seq %d attestation %s", i, entry.Header.Seq, entry.Header.Attestation)
		}
	}
	// The same Observations again would repeat the hour on the gateway's
	// chain: refused, nothing stored, and the chain goes on after it.
	batches := e.count(e.gatewayDB, "batches")
	if _, err := e.gateway.SubmitFHIR(ctx, &v1.SubmitFHIRRequest{Resource: obs}); status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "time order") {
		t.Errorf("the same Observations again = %v; want a conflict on time order", err)
	}
	if got := e.count(e.gatewayDB, "batches"); got != batches {
		t.Errorf("a refused resubmission left %d rows", got-batches)
	}
	if res, err := e.gateway.SubmitFHIR(ctx, &v1.SubmitFHIRRequest{Resource: observations(1)}); err != nil || res.Results[0].Pending {
		t.Errorf("the next hour after a refusal: %v, %v", res, err)
	}
	// Malformed FHIR is refused and writes nothing.
	batches = e.count(e.gatewayDB, "batches")
	_, err = e.gateway.SubmitFHIR(ctx, &v1.SubmitFHIRRequest{Resource: []byte(`{"resourceType":"Observation"}`)})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("malformed FHIR: code %v, want InvalidArgument", status.Code(err))
	}
	if got := e.count(e.gatewayDB, "batches"); got != batches {
		t.Errorf("malformed FHIR left %d rows", got-batches)
	}
}
