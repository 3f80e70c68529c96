package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vitalproof/vitalproof/wearables"
)

var (
	key32  = base64.StdEncoding.EncodeToString(make([]byte, 32))
	salt32 = key32
	entry  = "vitalproof/entry/v1\ndevice d1\n"
)

func TestREST(t *testing.T) {
	e := newTestEnv(t, HTTPOptions{Ledger: true, Gateway: true, MaxBodyBytes: 64 << 10, Policy: []byte(testPolicy)})
	big := `{"resourceType":"Bundle","pad":"` + strings.Repeat("x", 64<<10) + `"}`

	type check func(t *testing.T, r response)
	// isError checks an error body: its message, ErrorInfo reason and field.
	isError := func(msgPart, reason, field string) check {
		return func(t *testing.T, r response) {
			eb := parseError(t, r.body)
			if !strings.Contains(eb.Message, msgPart) {
				t.Errorf("message %q does not contain %q", eb.Message, msgPart)
			}
			gotReason, gotField := eb.reason()
			if gotReason != reason || gotField != field {
				t.Errorf("ErrorInfo reason, field = %q, %q; want %q, %q", gotReason, gotField, reason, field)
			}
			if strings.Contains(string(r.body), secretPatient) || strings.Contains(string(r.body), "goroutine") {
				t.Errorf("error body leaks internals: %s", r.body)
			}
		}
	}
	isJSON := func(want map[string]any) check {
		return func(t *testing.T, r response) {
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %q: %v", r.body, err)
			}
			for k, v := range want {
				gb, _ := json.Marshal(got[k])
				wb, _ := json.Marshal(v)
				if !bytes.Equal(gb, wb) {
					t.Errorf("%s = %s; want %s", k, gb, wb)
				}
			}
		}
	}
	header := func(k, v string) check {
		return func(t *testing.T, r response) {
			if got := r.header.Get(k); got != v {
				t.Errorf("header %s = %q; want %q", k, got, v)
			}
		}
	}
	bodyIs := func(want string) check {
		return func(t *testing.T, r response) {
			if string(r.body) != want {
				t.Errorf("body = %q; want %q", r.body, want)
			}
		}
	}

	tests := []struct {
		name        string
		method      string
		path        string
		key         string
		contentType string
		body        io.Reader
		status      int
		checks      []check
	}{
		// Ledger: registration (admin).
		{"register hospital", "POST", "/api/v1/log/hospitals", adminKey, "application/json",
			strings.NewReader(`{"hospital_id":"h2","name":"Two","public_key":"` + key32 + `"}`),
			200, []check{isJSON(map[string]any{"hospital_id": "h2", "api_key": "key-of-h2"})}},
		{"register hospital: bad key names the field", "POST", "/api/v1/log/hospitals", adminKey, "application/json",
			strings.NewReader(`{"hospital_id":"h3","name":"Three","public_key":"AAAA"}`),
			400, []check{isError("public_key: must be a 32-byte Ed25519 public key", "INVALID", "public_key")}},
		{"register hospital: exists", "POST", "/api/v1/log/hospitals", adminKey, "application/json",
			strings.NewReader(`{"hospital_id":"h1","name":"One","public_key":"` + key32 + `"}`),
			409, []check{isError("hospital_id: hospital is already registered", "CONFLICT", "hospital_id")}},
		{"register hospital: unknown JSON field", "POST", "/api/v1/log/hospitals", adminKey, "application/json",
			strings.NewReader(`{"hospital_id":"h4","name":"Four","public_key":"` + key32 + `","admin":true}`),
			400, []check{func(t *testing.T, r response) {
				if eb := parseError(t, r.body); !strings.Contains(eb.Message, `unknown field "admin"`) {
					t.Errorf("message %q does not name the unknown field", eb.Message)
				}
			}}},
		{"register hospital: JSON names, not proto names", "POST", "/api/v1/log/hospitals", adminKey, "application/json",
			strings.NewReader(`{"hospitalId":"h5","name":"Five","publicKey":"` + key32 + `"}`),
			200, []check{isJSON(map[string]any{"hospital_id": "h5"})}},
		{"register hospital: no key", "POST", "/api/v1/log/hospitals", "", "application/json",
			strings.NewReader(`{}`),
			401, []check{isError("missing API key", "UNAUTHENTICATED", ""), header("WWW-Authenticate", `Bearer realm="vitalproof"`)}},
		{"register hospital: unknown key", "POST", "/api/v1/log/hospitals", "nope", "application/json",
			strings.NewReader(`{}`),
			401, []check{isError("unknown API key", "UNAUTHENTICATED", "")}},
		{"register hospital: hospital role", "POST", "/api/v1/log/hospitals", hospitalKey, "application/json",
			strings.NewReader(`{}`),
			403, []check{isError("role (hospital) may not call this method", "PERMISSION_DENIED", "")}},
		{"register hospital: gateway key is unknown to the ledger", "POST", "/api/v1/log/hospitals", submitterKey, "application/json",
			strings.NewReader(`{}`),
			401, nil},
		{"register device", "POST", "/api/v1/log/devices", adminKey, "application/json",
			strings.NewReader(`{"device_id":"d9","manufacturer":"acme","udi":"(01)1(21)sn9","model":"W","firmware":"1","public_key":"` + key32 + `","hospital_id":"h1"}`),
			200, []check{isJSON(map[string]any{"device_id": "d9", "udi": "(01)1(21)SN9", "status": "active", "hospital_id": "h1", "public_key": key32})}},
		{"register device: hospital unknown", "POST", "/api/v1/log/devices", adminKey, "application/json",
			strings.NewReader(`{"device_id":"d8","hospital_id":"nowhere"}`),
			404, []check{isError("hospital_id: hospital is not registered", "NOT_FOUND", "hospital_id")}},
		{"get device by hospital", "GET", "/api/v1/log/devices/d1", hospitalKey, "", nil,
			200, []check{isJSON(map[string]any{"device_id": "d1", "manufacturer": "acme", "status": "active"})}},
		{"get device: not registered", "GET", "/api/v1/log/devices/d7", adminKey, "", nil,
			404, []check{isError("device_id: device is not registered", "NOT_FOUND", "device_id")}},
		{"get device: public has no access", "GET", "/api/v1/log/devices/d1", "", "", nil,
			401, nil},
		{"panic is an internal error", "GET", "/api/v1/log/devices/panic", adminKey, "", nil,
			500, []check{isError("internal error", "INTERNAL", "")}},

		// Ledger: entries.
		{"submit entries", "POST", "/api/v1/log/entries", hospitalKey, "application/json",
			strings.NewReader(`{"entries":["` + b64("e1") + `","` + b64("bad") + `","` + b64("conflict") + `","` + b64("pending") + `","` + b64("broken") + `"]}`),
			200, []check{func(t *testing.T, r response) {
				var got struct {
					Results []struct {
						Index     string `json:"index"`
						LeafHash  string `json:"leaf_hash"`
						Pending   bool   `json:"pending"`
						Duplicate *bool  `json:"duplicate"`
						Receipt   string `json:"receipt"`
						Error     *struct {
							Code    int    `json:"code"`
							Kind    string `json:"kind"`
							Field   string `json:"field"`
							Message string `json:"message"`
						} `json:"error"`
					} `json:"results"`
				}
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Results) != 5 {
					t.Fatalf("%d results; want 5: %s", len(got.Results), r.body)
				}
				lh := wearables.LeafHash([]byte("e1"))
				r0 := got.Results[0]
				if r0.Index != "1" || r0.LeafHash != base64.StdEncoding.EncodeToString(lh[:]) || r0.Error != nil || r0.Duplicate == nil || *r0.Duplicate || !strings.Contains(r0.Receipt, "index 1") {
					t.Errorf("accepted entry: %+v", r0)
				}
				if e := got.Results[1].Error; e == nil || e.Code != 3 || e.Kind != "INVALID" || e.Field != "entries[1]" || e.Message != "entries[1]: malformed entry" {
					t.Errorf("invalid entry: %+v", e)
				}
				if e := got.Results[2].Error; e == nil || e.Code != 6 || e.Kind != "CONFLICT" || e.Field != "entries[2].seq" {
					t.Errorf("conflicting entry: %+v", e)
				}
				if r3 := got.Results[3]; !r3.Pending || r3.Error != nil {
					t.Errorf("pending entry: %+v", r3)
				}
				if e := got.Results[4].Error; e == nil || e.Code != 13 || e.Kind != "INTERNAL" || e.Message != "internal error" || e.Field != "" {
					t.Errorf("internal refusal: %+v", e)
				}
				if strings.Contains(string(r.body), secretPatient) {
					t.Errorf("body leaks an internal error: %s", r.body)
				}
			}}},
		{"submit entries: whole call unavailable", "POST", "/api/v1/log/entries", hospitalKey, "application/json",
			strings.NewReader(`{"entries":["` + b64("outage") + `"]}`),
			503, []check{isError("log is unavailable", "UNAVAILABLE", ""), header("Retry-After", "5")}},
		{"submit entries: admin may not", "POST", "/api/v1/log/entries", adminKey, "application/json",
			strings.NewReader(`{"entries":[]}`), 403, nil},
		{"submit entries: entries not base64", "POST", "/api/v1/log/entries", hospitalKey, "application/json",
			strings.NewReader(`{"entries":["not base64!"]}`), 400, nil},
		{"get entry 0, public", "GET", "/api/v1/log/entries/0", "", "", nil,
			200, []check{isJSON(map[string]any{"index": "0", "entry": b64("vitalproof/entry/v1\nzero\n")})}},
		{"get entry: public ignores a bad key", "GET", "/api/v1/log/entries/0", "nope", "", nil, 200, nil},
		{"get entry: not found", "GET", "/api/v1/log/entries/12", "", "", nil,
			404, []check{isError("index: no entry at this index", "NOT_FOUND", "index")}},
		{"get entry: index not a number", "GET", "/api/v1/log/entries/x", "", "", nil, 400, nil},
		{"get entry: internal error hides its cause", "GET", "/api/v1/log/entries/13", "", "", nil,
			500, []check{isError("internal error", "INTERNAL", "")}},
		{"inclusion proof, latest", "GET", "/api/v1/log/entries/0/inclusion", "", "", nil,
			200, []check{isJSON(map[string]any{"index": "0", "tree_size": "3", "checkpoint": testCheckpoint,
				"hashes": []string{b64h(1), b64h(2)}})}},
		{"inclusion proof, older tree", "GET", "/api/v1/log/entries/0/inclusion?tree_size=2", "", "", nil,
			200, []check{isJSON(map[string]any{"tree_size": "2", "checkpoint": ""})}},
		{"inclusion proof, tree too large", "GET", "/api/v1/log/entries/0/inclusion?tree_size=9", "", "", nil,
			400, []check{isError("tree_size: larger than", "INVALID", "tree_size")}},
		{"inclusion proof, unknown query parameter", "GET", "/api/v1/log/entries/0/inclusion?size=2", "", "", nil, 400, nil},
		{"receipt", "GET", "/api/v1/log/entries/0/receipt", "", "", nil,
			200, []check{isJSON(map[string]any{"index": "0", "receipt": "c2sp.org/tlog-proof@v1\nindex 0\n"})}},
		{"receipt: pending", "GET", "/api/v1/log/entries/99/receipt", "", "", nil,
			503, []check{isError("index: entry is not yet integrated", "PENDING", "index"), header("Retry-After", "5")}},
		{"checkpoint, JSON", "GET", "/api/v1/log/checkpoint", "", "", nil,
			200, []check{isJSON(map[string]any{"checkpoint": testCheckpoint}), header("Content-Type", "application/json")}},
		{"checkpoint, text", "GET", "/api/v1/log/checkpoint.txt", "", "", nil,
			200, []check{bodyIs(testCheckpoint), header("Content-Type", "text/plain; charset=utf-8")}},
		{"consistency proof", "GET", "/api/v1/log/consistency?from=1&to=3", "", "", nil,
			200, []check{isJSON(map[string]any{"from": "1", "to": "3", "hashes": []string{b64h(3)}})}},
		{"entries", "GET", "/api/v1/log/entries?start=0&count=1", "", "", nil,
			200, []check{isJSON(map[string]any{"start": "0", "entries": []string{"dml0YWxwcm9vZi9lbnRyeS92MQp6ZXJvCg=="}})}},
		{"entries: beyond the log", "GET", "/api/v1/log/entries?start=70", "", "", nil,
			404, []check{isError("no entry at this index", "NOT_FOUND", "start")}},
		{"device history", "GET", "/api/v1/log/devices/d1/history?order=oldest&page_size=1", hospitalKey, "", nil,
			200, []check{isJSON(map[string]any{"device_id": "d1", "tree_size": "3", "next_page_token": "2",
				"items": []map[string]any{{"index": "2", "kind": "entry", "leaf": "bGVhZg==", "inclusion": []string{b64h(4)}}}})}},
		{"device history: bad order", "GET", "/api/v1/log/devices/d1/history?order=sideways", hospitalKey, "", nil,
			400, []check{isError("must be newest or oldest", "INVALID", "order")}},
		{"device history: anonymous", "GET", "/api/v1/log/devices/d1/history", "", "", nil,
			401, []check{isError("", "UNAUTHENTICATED", "")}},
		{"index check", "POST", "/api/v1/log/index/check", adminKey, "application/json", strings.NewReader(`{"repair":false}`),
			200, []check{isJSON(map[string]any{"leaves": "3", "extra": []string{"7"}, "repaired": false})}},
		{"policy, text", "GET", "/api/v1/log/policy.txt", "", "", nil,
			200, []check{bodyIs(testPolicy), header("Content-Type", "text/plain; charset=utf-8")}},
		{"checkpoint history", "GET", "/api/v1/log/checkpoints", "", "", nil,
			200, []check{isJSON(map[string]any{"next_before_size": "0", "checkpoints": []map[string]any{
				{"size": "3", "root_hash": b64h(3), "checkpoint": testCheckpoint, "witnessed": true, "published_at": "2026-11-29T08:00:03Z"},
				{"size": "2", "root_hash": b64h(2), "checkpoint": testCheckpoint, "witnessed": true, "published_at": "2026-11-29T08:00:02Z"},
				{"size": "1", "root_hash": b64h(1), "checkpoint": testCheckpoint, "witnessed": true, "published_at": "2026-11-29T08:00:01Z"},
			}})}},
		{"checkpoint history: a page", "GET", "/api/v1/log/checkpoints?page_size=1&before_size=3", "", "", nil,
			200, []check{isJSON(map[string]any{"next_before_size": "2", "checkpoints": []map[string]any{
				{"size": "2", "root_hash": b64h(2), "checkpoint": testCheckpoint, "witnessed": true, "published_at": "2026-11-29T08:00:02Z"},
			}})}},
		{"checkpoint history: unknown query parameter", "GET", "/api/v1/log/checkpoints?limit=1", "", "", nil, 400, nil},
		{"published checkpoint", "GET", "/api/v1/log/checkpoints/2", "", "", nil,
			200, []check{isJSON(map[string]any{"size": "2", "root_hash": b64h(2), "witnessed": true})}},
		{"published checkpoint: unknown size", "GET", "/api/v1/log/checkpoints/9", "", "", nil,
			404, []check{isError("no checkpoint of this tree size was published", "NOT_FOUND", "size")}},
		{"verifying keys", "GET", "/api/v1/log/zk/keys", "", "", nil,
			200, []check{isJSON(map[string]any{"keys": []map[string]any{{"fingerprint": strings.Repeat("ab", 32), "circuit": "range-1440",
				"setup": "development", "unsafe_for_production": true, "metadata": "eyJjaXJjdWl0IjoicmFuZ2UtMTQ0MCJ9", "verifying_key": ""}}})}},
		{"verifying key", "GET", "/api/v1/log/zk/keys/" + strings.Repeat("ab", 32), "", "", nil,
			200, []check{isJSON(map[string]any{"fingerprint": strings.Repeat("ab", 32), "verifying_key": "dmstYnl0ZXM="})}},
		{"verifying key: unknown", "GET", "/api/v1/log/zk/keys/" + strings.Repeat("cd", 32), "", "", nil,
			404, []check{isError("no verifying key with this fingerprint", "NOT_FOUND", "fingerprint")}},
		{"consistency proof: bad range", "GET", "/api/v1/log/consistency?from=3&to=1", "", "", nil,
			400, []check{isError("from: must be between 1 and to", "INVALID", "from")}},

		// Gateway.
		{"submit batch", "POST", "/api/v1/gateway/batches", submitterKey, "application/json",
			strings.NewReader(`{"entry":` + jsonString(entry) + `,"salt":"` + salt32 + `","readings":[{"offset":0,"value":72},{"offset":60,"value":75}],"patient_ref":"` + secretPatient + `"}`),
			200, []check{isJSON(map[string]any{"index": "5", "device_id": "d1", "metric": "8867-4", "attestation": "device", "readings": 2, "pending": false, "duplicate": false}),
				func(t *testing.T, r response) {
					if strings.Contains(string(r.body), secretPatient) {
						t.Errorf("answer names the patient: %s", r.body)
					}
					e.gateway.mu.Lock()
					defer e.gateway.mu.Unlock()
					b := e.gateway.batch
					if string(b.Entry) != entry || len(b.Salt) != 32 || b.PatientRef != secretPatient ||
						len(b.Readings) != 2 || b.Readings[1].Offset != 60 || b.Readings[1].Value != 75 {
						t.Errorf("backend got %+v", b)
					}
				}}},
		{"submit batch: bad salt", "POST", "/api/v1/gateway/batches", submitterKey, "application/json",
			strings.NewReader(`{"entry":` + jsonString(entry) + `,"salt":"AAAA","readings":[]}`),
			400, []check{isError("salt: must be the 32-byte", "INVALID", "salt")}},
		{"submit batch: reading value out of uint32", "POST", "/api/v1/gateway/batches", submitterKey, "application/json",
			strings.NewReader(`{"entry":"x","salt":"` + salt32 + `","readings":[{"offset":0,"value":4294967296}]}`),
			400, nil},
		{"submit batch: reader may not", "POST", "/api/v1/gateway/batches", readerKey, "application/json",
			strings.NewReader(`{}`), 403, []check{isError("may not call this method", "PERMISSION_DENIED", "")}},
		{"submit batch: ledger key is unknown to the gateway", "POST", "/api/v1/gateway/batches", hospitalKey, "application/json",
			strings.NewReader(`{}`), 401, nil},
		{"gateway receipt by reader", "GET", "/api/v1/gateway/receipts/5", readerKey, "", nil,
			200, []check{isJSON(map[string]any{"index": "5", "receipt": "r", "readings": 3, "attestation": "device"})}},
		{"gateway receipt: not found", "GET", "/api/v1/gateway/receipts/6", submitterKey, "", nil,
			404, []check{isError("index: no batch", "NOT_FOUND", "index")}},
		{"gateway receipt: admin is neither submitter nor reader", "GET", "/api/v1/gateway/receipts/5", adminKey, "", nil, 403, nil},
		{"FHIR, raw body", "POST", "/api/v1/gateway/fhir", submitterKey, "application/fhir+json; charset=utf-8",
			strings.NewReader(`{"resourceType":"Observation","status":"final"}`),
			200, []check{header("Content-Type", "application/json"), func(t *testing.T, r response) {
				var got struct {
					Results []map[string]any `json:"results"`
				}
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Results) != 2 || got.Results[0]["pending"] != true || got.Results[1]["index"] != "8" || got.Results[1]["device_id"] != "d2" {
					t.Errorf("results: %s", r.body)
				}
				e.gateway.mu.Lock()
				defer e.gateway.mu.Unlock()
				if string(e.gateway.resource) != `{"resourceType":"Observation","status":"final"}` {
					t.Errorf("backend got resource %q", e.gateway.resource)
				}
			}}},
		{"FHIR, application/json", "POST", "/api/v1/gateway/fhir", submitterKey, "application/json",
			strings.NewReader(`{"resourceType":"Bundle"}`), 200, nil},
		{"FHIR: invalid resource", "POST", "/api/v1/gateway/fhir", submitterKey, "application/fhir+json",
			strings.NewReader(`{"resourceType":`), 400, []check{isError("resource: not JSON", "INVALID", "resource")}},
		{"FHIR: other media type", "POST", "/api/v1/gateway/fhir", submitterKey, "text/plain",
			strings.NewReader(`{}`), 415, []check{isError("Content-Type: must be", "INVALID", "Content-Type")}},
		{"FHIR: no key", "POST", "/api/v1/gateway/fhir", "", "application/fhir+json",
			strings.NewReader(`{}`), 401, []check{isError("missing API key", "UNAUTHENTICATED", "")}},
		{"FHIR: reader may not", "POST", "/api/v1/gateway/fhir", readerKey, "application/fhir+json",
			strings.NewReader(`{}`), 403, nil},
		{"FHIR: oversized body", "POST", "/api/v1/gateway/fhir", submitterKey, "application/fhir+json",
			strings.NewReader(big), 413, []check{isError("body: larger than 65536 bytes", "INVALID", "body")}},
		{"FHIR: oversized body without a length", "POST", "/api/v1/gateway/fhir", submitterKey, "application/fhir+json",
			iotest.HalfReader(strings.NewReader(big)), 413, nil},
		{"JSON route: oversized body", "POST", "/api/v1/log/entries", hospitalKey, "application/json",
			strings.NewReader(`{"entries":["` + strings.Repeat("A", 64<<10) + `"]}`), 413, nil},

		// Operations.
		{"healthz", "GET", "/healthz", "", "", nil, 200, nil},
		{"metrics", "GET", "/metrics", "", "", nil, 200, []check{func(t *testing.T, r response) {
			if !strings.Contains(string(r.body), "vitalproof_api_requests_total") {
				t.Error("metrics lack vitalproof_api_requests_total")
			}
		}}},
		{"unknown route", "GET", "/api/v1/log/nothing", "", "", nil, 404, nil},
		{"wrong method", "DELETE", "/api/v1/log/checkpoint", "", "", nil, 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.key, tt.contentType, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d; want %d; body %s", r.status, tt.status, r.body)
			}
			for _, c := range tt.checks {
				c(t, r)
			}
		})
	}

	t.Run("hospital ID comes from the key", func(t *testing.T) {
		e.ledger.mu.Lock()
		defer e.ledger.mu.Unlock()
		if e.ledger.submitter != "h1" {
			t.Errorf("SubmitEntries got hospital %q; want h1", e.ledger.submitter)
		}
	})
	t.Run("logs", func(t *testing.T) {
		logs := e.logs.String()
		if !strings.Contains(logs, "panic in handler") || !strings.Contains(logs, "internal error") {
			t.Errorf("panic or internal error not logged:\n%s", logs)
		}
		// The panic's value held PHI: only its type is logged.
		if strings.Contains(logs, "exploded") {
			t.Errorf("the panic's value was logged:\n%s", logs)
		}
	})
}

func TestHTTPHandlerServesOnlyItsServices(t *testing.T) {
	e := newTestEnv(t, HTTPOptions{Gateway: true})
	for _, path := range []string{"/api/v1/log/checkpoint", "/api/v1/log/checkpoint.txt"} {
		if r := e.do(t, "GET", path, "", "", nil); r.status != http.StatusNotFound {
			t.Errorf("gateway-only handler: GET %s = %d; want 404", path, r.status)
		}
	}
	if r := e.do(t, "GET", "/api/v1/gateway/receipts/5", readerKey, "", nil); r.status != http.StatusOK {
		t.Errorf("gateway-only handler: receipt = %d; want 200", r.status)
	}
	if _, err := NewHTTPHandler(t.Context(), e.conn, HTTPOptions{}); err == nil {
		t.Error("NewHTTPHandler with no service: no error")
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// b64h is the base64 of a hash whose first byte is b.
func b64h(b byte) string {
	var h [32]byte
	h[0] = b
	return base64.StdEncoding.EncodeToString(h[:])
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
