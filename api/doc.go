// Package api serves VitalProof's two services over gRPC and REST: the
// consortium's ledger (vitalproof.v1.LedgerService, REST under
// /api/v1/log/) and a hospital's gateway (vitalproof.v1.GatewayService,
// REST under /api/v1/gateway/), so that one HTTP mux can serve both.
//
// The protos in api/proto/vitalproof/v1 are the source of truth: api/gen
// holds the generated Go (package vitalproofv1: messages, gRPC, grpc-gateway)
// and api/openapi the OpenAPI v2 document; api/generate.sh regenerates both
// (see api/README.md). The REST routes are in
// api/proto/vitalproof/v1/vitalproof_http.yaml.
//
// The service implementations ([NewLedgerServer], [NewGatewayServer]) only
// translate between the wire and a backend ([LedgerBackend],
// [GatewayBackend], implemented by package provenance); every check of the
// input is the backend's. [NewGRPCServer] adds authentication, error mapping,
// metrics and panic recovery; [NewHTTPHandler] serves the REST API through a
// gRPC client conn, so both surfaces share them. [NewLedgerClient] is the
// ledger as a gateway calls it.
//
// # Access
//
// Callers send an API key as "authorization: Bearer <key>": gRPC metadata,
// or the HTTP Authorization header, which grpc-gateway forwards. The
// backend's Authenticate resolves the key to a [provenance.Principal], and
// the method's rule must admit the principal's role:
//
//	method                            roles
//	LedgerService.RegisterHospital    admin
//	LedgerService.RegisterDevice      admin
//	LedgerService.GetDevice           admin, hospital
//	LedgerService.SubmitEntries       hospital (the principal's ID is the submitting hospital)
//	LedgerService.Get* (log reads)    public: no key needed, any key ignored
//	GatewayService.SubmitBatch        submitter
//	GatewayService.SubmitFHIR         submitter
//	GatewayService.GetReceipt         submitter, reader
//
// A missing, malformed or unknown key is UNAUTHENTICATED (HTTP 401); a role
// the rule does not admit is PERMISSION_DENIED (403). Handlers read the
// caller with [PrincipalFrom].
//
// # Errors
//
// One table maps the kinds of [provenance.Error] to gRPC codes, and
// grpc-gateway maps those to HTTP statuses:
//
//	error                      gRPC code          HTTP  ErrorInfo reason
//	KindInvalid                InvalidArgument    400   INVALID
//	KindUnauthenticated        Unauthenticated    401   UNAUTHENTICATED
//	KindPermission             PermissionDenied   403   PERMISSION_DENIED
//	KindNotFound               NotFound           404   NOT_FOUND
//	KindConflict               AlreadyExists      409   CONFLICT
//	KindPending                Unavailable        503   PENDING      + Retry-After
//	KindUnavailable            Unavailable        503   UNAVAILABLE  + Retry-After
//	context.Canceled           Canceled           499   -
//	context.DeadlineExceeded   DeadlineExceeded   504   -
//	anything else              Internal           500   INTERNAL
//
// The message is the error's ClientMessage, "<field>: <reason>", which
// never holds a reading, a salt or a patient identifier. An internal error
// only says "internal error" to the client; the error itself goes to slog
// at Warn. Every mapped status carries one google.rpc.ErrorInfo detail
// (domain "vitalproof") with the kind as its reason and the field, if any,
// as metadata["field"]; PENDING and UNAVAILABLE also carry a
// google.rpc.RetryInfo of 5 seconds, which the REST handler turns into a
// Retry-After header.
//
// Conflicts (a registration that exists, an entry that is not the next
// link of its device's chain) are AlreadyExists, not FailedPrecondition:
// grpc-gateway answers FailedPrecondition with 400, which would tell a REST
// client its request is malformed, while AlreadyExists gives 409; and
// Aborted, the other code with 409, tells gRPC clients to retry, which
// cannot help here.
//
// A pending entry (accepted and durable, not yet integrated) is
// Unavailable: the same request succeeds later, which is what 503 with
// Retry-After tells HTTP clients and gRPC retry policies. The PENDING
// reason tells it apart from a dependency that is down.
//
// Over REST an error body is grpc-gateway's JSON form of google.rpc.Status:
//
//	{"code": 3, "message": "salt: must be the 32-byte canonical encoding of a BN254 field element",
//	 "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
//	              "reason": "INVALID", "domain": "vitalproof", "metadata": {"field": "salt"}}]}
//
// Errors found before a call carry an explicit HTTP status: 413 for a body
// over the limit, 415 for a FHIR body of another media type, both with
// code 3 and reason INVALID. An unknown route is 404 and a known route
// with the wrong method 405 (code 12, UNIMPLEMENTED), without ErrorInfo.
//
// A refused entry of a SubmitEntries call is not an error of the call: its
// EntryResult carries an EntryError with the same code, kind, field and
// message that the entry's error would have had alone.
//
// # REST
//
// JSON uses the proto field names (hospital_id, leaf_hash), 64-bit
// integers are decimal strings and bytes standard base64 (protojson), fields
// with zero values are emitted, and unknown fields, in a body or as query
// parameters, are refused with 400.
// Besides the generated routes, [NewHTTPHandler] serves
// GET /api/v1/log/checkpoint.txt (text/plain), POST /api/v1/gateway/fhir
// (the raw FHIR JSON body), GET /healthz and GET /metrics. Bodies are
// bounded by [HTTPOptions.MaxBodyBytes].
package api
