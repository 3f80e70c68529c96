package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
)

func TestErrorStatus(t *testing.T) {
	secret := errors.New("SELECT ... " + secretPatient)
	tests := []struct {
		name   string
		err    error
		code   codes.Code
		http   int
		msg    string
		reason string // ErrorInfo reason; "" for none
		field  string
		retry  bool
		logIt  bool
	}{
		{"invalid", &provenance.Error{Kind: provenance.KindInvalid, Field: "salt", Reason: "must be 32 bytes"},
			codes.InvalidArgument, 400, "salt: must be 32 bytes", "INVALID", "salt", false, false},
		{"invalid without field", &provenance.Error{Kind: provenance.KindInvalid, Reason: "no entries"},
			codes.InvalidArgument, 400, "no entries", "INVALID", "", false, false},
		{"unauthenticated", &provenance.Error{Kind: provenance.KindUnauthenticated, Reason: "unknown API key"},
			codes.Unauthenticated, 401, "unknown API key", "UNAUTHENTICATED", "", false, false},
		{"permission", &provenance.Error{Kind: provenance.KindPermission, Field: "entry.hospital", Reason: "entry is for another hospital"},
			codes.PermissionDenied, 403, "entry.hospital: entry is for another hospital", "PERMISSION_DENIED", "entry.hospital", false, false},
		{"not found", &provenance.Error{Kind: provenance.KindNotFound, Field: "device_id", Reason: "device is not registered"},
			codes.NotFound, 404, "device_id: device is not registered", "NOT_FOUND", "device_id", false, false},
		{"conflict", &provenance.Error{Kind: provenance.KindConflict, Field: "entries[0].seq", Reason: "not the next link"},
			codes.AlreadyExists, 409, "entries[0].seq: not the next link", "CONFLICT", "entries[0].seq", false, false},
		{"pending", &provenance.Error{Kind: provenance.KindPending, Field: "index", Reason: "not yet integrated"},
			codes.Unavailable, 503, "index: not yet integrated", "PENDING", "index", true, false},
		{"unavailable", &provenance.Error{Kind: provenance.KindUnavailable, Reason: "request cancelled"},
			codes.Unavailable, 503, "request cancelled", "UNAVAILABLE", "", true, false},
		{"wrapped kind keeps its message", fmt.Errorf("couldn't submit: %w", &provenance.Error{Kind: provenance.KindNotFound, Field: "index", Reason: "no entry"}),
			codes.NotFound, 404, "index: no entry", "NOT_FOUND", "index", false, false},
		{"provenance internal", &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't look up API key", Err: secret},
			codes.Internal, 500, "internal error", "INTERNAL", "", false, true},
		{"unknown kind is internal", &provenance.Error{Kind: provenance.Kind(42), Field: "x", Reason: "what " + secretPatient},
			codes.Internal, 500, "internal error", "INTERNAL", "", false, true},
		{"plain error", secret, codes.Internal, 500, "internal error", "INTERNAL", "", false, true},
		{"a status error is not trusted", status.Error(codes.NotFound, secretPatient),
			codes.Internal, 500, "internal error", "INTERNAL", "", false, true},
		{"panic", errPanic{}, codes.Internal, 500, "internal error", "INTERNAL", "", false, true},
		{"context canceled", context.Canceled, codes.Canceled, 499, "request cancelled", "", "", false, false},
		{"wrapped canceled in an internal error", &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't read", Err: fmt.Errorf("query: %w", context.Canceled)},
			codes.Canceled, 499, "request cancelled", "", "", false, false},
		{"deadline", fmt.Errorf("couldn't wait: %w", context.DeadlineExceeded), codes.DeadlineExceeded, 504, "deadline exceeded", "", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, internal := errorStatus(tt.err)
			if st.Code() != tt.code || st.Message() != tt.msg {
				t.Errorf("status = %v %q; want %v %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
			if h := runtime.HTTPStatusFromCode(st.Code()); h != tt.http {
				t.Errorf("HTTP status = %d; want %d", h, tt.http)
			}
			if internal != tt.logIt {
				t.Errorf("internal = %v; want %v", internal, tt.logIt)
			}
			var reason, field string
			var retry bool
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					if d.GetDomain() != errorDomain {
						t.Errorf("ErrorInfo domain %q", d.GetDomain())
					}
					reason, field = d.GetReason(), d.GetMetadata()["field"]
				case *errdetails.RetryInfo:
					retry = d.GetRetryDelay().AsDuration() == retryAfter
				default:
					t.Errorf("unexpected detail %T", d)
				}
			}
			if reason != tt.reason || field != tt.field || retry != tt.retry {
				t.Errorf("details: reason %q field %q retry %v; want %q %q %v", reason, field, retry, tt.reason, tt.field, tt.retry)
			}
			if strings.Contains(st.String(), secretPatient) {
				t.Errorf("status leaks the cause: %v", st)
			}
		})
	}
	if st, internal := errorStatus(nil); st != nil || internal {
		t.Errorf("errorStatus(nil) = %v, %v", st, internal)
	}
}

// TestErrorRoundTrip checks that what the server maps, the ledger client
// maps back to the same kind, field and reason.
func TestErrorRoundTrip(t *testing.T) {
	for k := range kindCode {
		if k == provenance.KindInternal {
			continue
		}
		for _, field := range []string{"", "entries[2].prev"} {
			in := &provenance.Error{Kind: k, Field: field, Reason: "reason: with a colon"}
			st, _ := errorStatus(in)
			out := errorFromStatus(st.Err())
			if out.Kind != in.Kind || out.Field != in.Field || out.Reason != in.Reason {
				t.Errorf("%s %q: got back %v %q %q", kindName[k], field, out.Kind, out.Field, out.Reason)
			}
			if out.ClientMessage() != in.ClientMessage() {
				t.Errorf("%s: ClientMessage %q; want %q", kindName[k], out.ClientMessage(), in.ClientMessage())
			}

			ee, internal := entryError(in)
			if internal {
				t.Errorf("%s: entryError says internal", kindName[k])
			}
			if ee.GetCode() != int32(kindCode[k]) || ee.GetKind() != kindName[k] {
				t.Errorf("%s: entry error %v", kindName[k], ee)
			}
			back := entryErrorFrom(ee)
			if back.Kind != in.Kind || back.Field != in.Field || back.Reason != in.Reason {
				t.Errorf("%s %q: entry error came back as %v %q %q", kindName[k], field, back.Kind, back.Field, back.Reason)
			}
		}
	}
}

func TestErrorFromForeignStatus(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		kind   provenance.Kind
		reason string
	}{
		{"transport", status.Error(codes.Unavailable, "connection refused 10.0.0.1"), provenance.KindUnavailable, "the ledger is unavailable"},
		{"timeout", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), provenance.KindUnavailable, "the ledger is unavailable"},
		{"message too large", status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), provenance.KindUnavailable, "the ledger is unavailable"},
		{"internal", status.Error(codes.Internal, "stack trace"), provenance.KindInternal, "couldn't call the ledger"},
		{"unknown", status.Error(codes.Unknown, "?"), provenance.KindInternal, "couldn't call the ledger"},
		{"ours without detail", status.Error(codes.NotFound, "index: no entry"), provenance.KindNotFound, "index: no entry"},
		{"not a status", errors.New("eof"), provenance.KindInternal, "couldn't call the ledger"},
		{"context", fmt.Errorf("x: %w", context.DeadlineExceeded), provenance.KindUnavailable, "call to the ledger cancelled or timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := errorFromStatus(tt.err)
			if e.Kind != tt.kind || e.Reason != tt.reason {
				t.Errorf("got %v %q; want %v %q", e.Kind, e.Reason, tt.kind, tt.reason)
			}
			if !errors.Is(e, tt.err) {
				t.Error("the cause is not kept in Err")
			}
		})
	}
}

func TestEntryErrorInternal(t *testing.T) {
	ee, internal := entryError(&provenance.Error{Kind: provenance.KindInternal, Field: "entries[0]", Reason: "couldn't", Err: errors.New(secretPatient)})
	if !internal || ee.GetCode() != int32(codes.Internal) || ee.GetMessage() != "internal error" || ee.GetField() != "" || ee.GetKind() != "INTERNAL" {
		t.Errorf("entryError = %v, %v", ee, internal)
	}
	// An entry error from an older or newer ledger with an unknown kind is
	// classified by its code.
	back := entryErrorFrom(&vitalproofv1.EntryError{Code: int32(codes.NotFound), Kind: "GONE", Field: "f", Message: "f: gone"})
	if back.Kind != provenance.KindNotFound || back.Reason != "gone" {
		t.Errorf("entryErrorFrom(unknown kind) = %v %q", back.Kind, back.Reason)
	}
	if back := entryErrorFrom(&vitalproofv1.EntryError{Code: 999}); back.Kind != provenance.KindInternal {
		t.Errorf("entryErrorFrom(code 999) = %v", back.Kind)
	}
}
