package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vitalproof/vitalproof/provenance"
)

// FuzzRESTBody sends arbitrary bodies to the JSON and FHIR routes: the
// answer is a success or a client error in the documented error form,
// never a server error.
func FuzzRESTBody(f *testing.F) {
	e := newTestEnv(f, HTTPOptions{Ledger: true, Gateway: true, MaxBodyBytes: 4 << 10})
	seeds := []string{
		`{"entry":` + jsonString(entry) + `,"salt":"` + salt32 + `","readings":[{"offset":1,"value":2}]}`,
		`{"entry":"x","salt":"AAAA","readings":[{"offset":-1}]}`,
		`{"entries":["` + b64("e1") + `","` + b64("broken") + `"]}`,
		`{"hospital_id":"h9","name":"N","public_key":"` + key32 + `"}`,
		`{"resourceType":"Observation"}`,
		`{"unknown":1}`, `[]`, `null`, `{"readings":{}}`, "{\"entry\":\"\xff\"}", ``, `{`,
	}
	paths := []string{"/api/v1/gateway/batches", "/api/v1/log/entries", "/api/v1/log/hospitals", "/api/v1/gateway/fhir"}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	keys := map[string]string{
		"/api/v1/gateway/batches": submitterKey, "/api/v1/log/entries": hospitalKey,
		"/api/v1/log/hospitals": adminKey, "/api/v1/gateway/fhir": submitterKey,
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := paths[int(route)%len(paths)]
		r := e.do(t, "POST", path, keys[path], "application/json", bytes.NewReader(body))
		if r.status == http.StatusOK {
			return
		}
		if r.status >= 500 || r.status < 400 {
			t.Fatalf("POST %s %q: status %d: %s", path, body, r.status, r.body)
		}
		var eb errorBody
		if err := json.Unmarshal(r.body, &eb); err != nil || eb.Code == 0 || eb.Message == "" {
			t.Fatalf("POST %s: error body %q", path, r.body)
		}
	})
}

// FuzzErrorFromStatus maps arbitrary statuses, as a ledger (or anything
// posing as one) could answer, back to errors: always a known kind, and
// the ErrorInfo's field when the detail is ours.
func FuzzErrorFromStatus(f *testing.F) {
	f.Add(uint32(3), "salt: bad", "INVALID", "salt", errorDomain)
	f.Add(uint32(14), "index: later", "PENDING", "index", errorDomain)
	f.Add(uint32(5), "x", "NOT_FOUND", "", "other.domain")
	f.Add(uint32(99), "", "", "", "")
	f.Add(uint32(6), "entries[1].seq: no", "WHATEVER", "entries[1].seq", errorDomain)
	f.Fuzz(func(t *testing.T, code uint32, msg, reason, field, domain string) {
		st := status.New(codes.Code(code), msg)
		info := &errdetails.ErrorInfo{Reason: reason, Domain: domain, Metadata: map[string]string{"field": field}}
		attached := false
		if withInfo, err := st.WithDetails(info); err == nil { // fails on invalid UTF-8
			st, attached = withInfo, true
		}
		e := errorFromStatus(st.Err())
		if _, ok := kindName[e.Kind]; !ok {
			t.Fatalf("unknown kind %v", e.Kind)
		}
		_, known := kindByName(reason)
		known = known && attached
		if code != 0 && domain == errorDomain && known {
			if e.Field != field {
				t.Fatalf("field %q; want %q", e.Field, field)
			}
		} else if e.Field != "" {
			t.Fatalf("field %q from a foreign status", e.Field)
		}
		if e.Kind == provenance.KindInternal && e.Reason != "couldn't call the ledger" && !(domain == errorDomain && known) {
			t.Fatalf("internal error with reason %q", e.Reason)
		}
	})
}
