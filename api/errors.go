package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
)

const (
	// errorDomain is the domain of the google.rpc.ErrorInfo detail that
	// every mapped error carries.
	errorDomain = "vitalproof"
	// retryAfter is the delay suggested (google.rpc.RetryInfo, HTTP
	// Retry-After) with PENDING and UNAVAILABLE errors: about one reconcile
	// interval of the ledger and outbox interval of the gateway.
	retryAfter = 5 * time.Second
	// internalMessage is all a client learns of a failure of ours.
	internalMessage = "internal error"
)

// kindCode is the one table from error kinds to gRPC codes (and, through
// grpc-gateway's runtime.HTTPStatusFromCode, to HTTP statuses). See the
// package documentation for why conflicts and pending entries get the
// codes they get.
var kindCode = map[provenance.Kind]codes.Code{
	provenance.KindInvalid:         codes.InvalidArgument,  // 400
	provenance.KindUnauthenticated: codes.Unauthenticated,  // 401
	provenance.KindPermission:      codes.PermissionDenied, // 403
	provenance.KindNotFound:        codes.NotFound,         // 404
	provenance.KindConflict:        codes.AlreadyExists,    // 409
	provenance.KindPending:         codes.Unavailable,      // 503 + Retry-After
	provenance.KindUnavailable:     codes.Unavailable,      // 503 + Retry-After
	provenance.KindInternal:        codes.Internal,         // 500
}

// kindName names each kind on the wire: the reason of the ErrorInfo detail
// and the kind of an EntryError.
var kindName = map[provenance.Kind]string{
	provenance.KindInvalid:         "INVALID",
	provenance.KindUnauthenticated: "UNAUTHENTICATED",
	provenance.KindPermission:      "PERMISSION_DENIED",
	provenance.KindNotFound:        "NOT_FOUND",
	provenance.KindConflict:        "CONFLICT",
	provenance.KindPending:         "PENDING",
	provenance.KindUnavailable:     "UNAVAILABLE",
	provenance.KindInternal:        "INTERNAL",
}

// errorStatus maps an error of a backend (or of this package's
// interceptors) to the status a client sees. A *provenance.Error of a
// client-facing kind keeps its kind and its ClientMessage; a cancelled or
// expired context becomes Canceled or DeadlineExceeded; anything else is
// Internal with the message "internal error", and internal reports that
// the caller should log err.
//
// It never passes an error's own text through unless that error is a
// *provenance.Error of a client-facing kind, whose messages are written to
// be shown.
func errorStatus(err error) (st *status.Status, internal bool) {
	if err == nil {
		return nil, false
	}
	var pe *provenance.Error
	if errors.As(err, &pe) && pe.Kind != provenance.KindInternal {
		if _, ok := kindCode[pe.Kind]; ok {
			return kindStatus(pe.Kind, pe.Field, pe.ClientMessage()), false
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request cancelled"), false
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded"), false
	}
	return kindStatus(provenance.KindInternal, "", internalMessage), true
}

// kindStatus returns the status of an error of kind k about field, with
// its ErrorInfo detail and, for the kinds worth retrying, a RetryInfo.
func kindStatus(k provenance.Kind, field, msg string) *status.Status {
	st := status.New(kindCode[k], msg)
	info := &errdetails.ErrorInfo{Reason: kindName[k], Domain: errorDomain}
	if field != "" {
		info.Metadata = map[string]string{"field": field}
	}
	var withDetails *status.Status
	var err error
	if k == provenance.KindPending || k == provenance.KindUnavailable {
		withDetails, err = st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	} else {
		withDetails, err = st.WithDetails(info)
	}
	if err != nil { // only for a field that is not UTF-8
		return st
	}
	return withDetails
}

// errorFromStatus maps an error of a call to a VitalProof service back to a
// *provenance.Error of the same kind, field and message. Errors that carry
// no VitalProof ErrorInfo (transport failures, other servers) are
// classified by their code alone, with a generic reason; their text stays
// in Err, for logs.
func errorFromStatus(err error) *provenance.Error {
	st, ok := status.FromError(err)
	if !ok {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return &provenance.Error{Kind: provenance.KindUnavailable, Reason: "call to the ledger cancelled or timed out", Err: err}
		}
		return &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't call the ledger", Err: err}
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		k, ok := kindByName(info.GetReason())
		if !ok {
			break
		}
		field := info.GetMetadata()["field"]
		return &provenance.Error{Kind: k, Field: field, Reason: reasonOf(st.Message(), field), Err: err}
	}
	k := kindOfCode(st.Code())
	reason := "the ledger failed"
	switch k {
	case provenance.KindUnavailable:
		reason = "the ledger is unavailable"
	case provenance.KindInternal:
		reason = "couldn't call the ledger"
	default:
		// A status of ours without its detail (a proxy in between, say):
		// its message is still a client message.
		reason = st.Message()
	}
	return &provenance.Error{Kind: k, Reason: reason, Err: err}
}

// entryError is the wire form of a per-entry refusal. An internal one is
// reported as "internal error" and internal says the caller should log e.
func entryError(e *provenance.Error) (ee *vitalproofv1.EntryError, internal bool) {
	k := e.Kind
	if _, ok := kindCode[k]; !ok {
		k = provenance.KindInternal
	}
	if k == provenance.KindInternal {
		return &vitalproofv1.EntryError{Code: int32(codes.Internal), Kind: kindName[k], Message: internalMessage}, true
	}
	return &vitalproofv1.EntryError{Code: int32(kindCode[k]), Kind: kindName[k], Field: e.Field, Message: e.ClientMessage()}, false
}

// entryErrorFrom is the inverse of entryError.
func entryErrorFrom(ee *vitalproofv1.EntryError) *provenance.Error {
	k, ok := kindByName(ee.GetKind())
	if !ok {
		k = provenance.KindInternal
		if c := ee.GetCode(); c > 0 && c <= int32(codes.Unauthenticated) {
			k = kindOfCode(codes.Code(c))
		}
	}
	return &provenance.Error{Kind: k, Field: ee.GetField(), Reason: reasonOf(ee.GetMessage(), ee.GetField())}
}

// reasonOf strips the "<field>: " prefix that ClientMessage adds.
func reasonOf(msg, field string) string {
	if field != "" {
		if r, ok := strings.CutPrefix(msg, field+": "); ok {
			return r
		}
	}
	return msg
}

func kindByName(name string) (provenance.Kind, bool) {
	for k, n := range kindName {
		if n == name {
			return k, true
		}
	}
	return provenance.KindInternal, false
}

// kindOfCode classifies a status that carries no VitalProof ErrorInfo.
// Timeouts and resource limits count as unavailable, so that a gateway
// keeps its batches pending and tries again.
func kindOfCode(c codes.Code) provenance.Kind {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return provenance.KindInvalid
	case codes.Unauthenticated:
		return provenance.KindUnauthenticated
	case codes.PermissionDenied:
		return provenance.KindPermission
	case codes.NotFound:
		return provenance.KindNotFound
	case codes.AlreadyExists, codes.Aborted:
		return provenance.KindConflict
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted:
		return provenance.KindUnavailable
	}
	return provenance.KindInternal
}
