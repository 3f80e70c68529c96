package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
)

// DefaultMaxBodyBytes bounds a REST request body unless
// [HTTPOptions.MaxBodyBytes] says otherwise: room for a SubmitEntries call
// of 1000 base64 entries or a FHIR Bundle of a few thousand Observations.
const DefaultMaxBodyBytes = 4 << 20

// Routes served beside the generated ones.
const (
	checkpointTextPath = "/api/v1/log/checkpoint.txt"
	policyTextPath     = "/api/v1/log/policy.txt"
	fhirPath           = "/api/v1/gateway/fhir"
)

// HTTPOptions configures [NewHTTPHandler].
type HTTPOptions struct {
	// Ledger and Gateway say which services' routes to serve; at least one
	// must be set, and the conn must reach a server that runs them.
	Ledger, Gateway bool
	// MaxBodyBytes bounds a request body; larger ones are refused with 413.
	// Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Policy is the tlog-policy that the ledger's published checkpoints
	// satisfy, served at /api/v1/log/policy.txt when Ledger is set and
	// Policy is not empty.
	Policy []byte
}

// NewHTTPHandler returns the REST API of the services that opts names,
// served by a grpc-gateway mux that calls them through conn (so
// authentication, authorization and error mapping are the gRPC server's),
// plus:
//
//   - GET /api/v1/log/checkpoint.txt (ledger): the latest published
//     checkpoint as it is, Content-Type text/plain; charset=utf-8;
//   - GET /api/v1/log/policy.txt (ledger): opts.Policy, the tlog-policy,
//     Content-Type text/plain; charset=utf-8;
//   - POST /api/v1/gateway/fhir (gateway): the FHIR R4 JSON resource itself
//     as the body (Content-Type application/fhir+json or application/json),
//     answered with a SubmitFHIRResponse;
//   - GET /healthz: the gRPC health service's status of conn's server;
//   - GET /metrics: Prometheus metrics of the default registry.
//
// JSON uses the proto field names, emits fields with zero values, and
// refuses unknown fields and query parameters. Errors are grpc-gateway's JSON form of the
// google.rpc.Status (see the package documentation), with a Retry-After
// header on 503.
//
// ctx bounds nothing after NewHTTPHandler returns; conn's lifetime is the
// caller's.
func NewHTTPHandler(ctx context.Context, conn *grpc.ClientConn, opts HTTPOptions) (http.Handler, error) {
	if !opts.Ledger && !opts.Gateway {
		return nil, errors.New("couldn't create HTTP handler: serve the ledger, the gateway or both")
	}
	limit := opts.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	marshaler := &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithErrorHandler(httpErrorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.SetQueryParameterParser(strictQueryParser{}),
		runtime.WithHealthzEndpoint(healthpb.NewHealthClient(conn)),
	)
	if opts.Ledger {
		if err := vitalproofv1.RegisterLedgerServiceHandler(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("couldn't register ledger routes: %w", err)
		}
		if err := mux.HandlePath(http.MethodGet, checkpointTextPath, checkpointText(mux, vitalproofv1.NewLedgerServiceClient(conn))); err != nil {
			return nil, fmt.Errorf("couldn't register %s: %w", checkpointTextPath, err)
		}
		if len(opts.Policy) > 0 {
			policy := bytes.Clone(opts.Policy)
			if err := mux.HandlePath(http.MethodGet, policyTextPath, func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Write(policy)
			}); err != nil {
				return nil, fmt.Errorf("couldn't register %s: %w", policyTextPath, err)
			}
		}
	}
	if opts.Gateway {
		if err := vitalproofv1.RegisterGatewayServiceHandler(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("couldn't register gateway routes: %w", err)
		}
		if err := mux.HandlePath(http.MethodPost, fhirPath, submitFHIR(mux, vitalproofv1.NewGatewayServiceClient(conn))); err != nil {
			return nil, fmt.Errorf("couldn't register %s: %w", fhirPath, err)
		}
	}
	metrics := promhttp.Handler()
	if err := mux.HandlePath(http.MethodGet, "/metrics", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		metrics.ServeHTTP(w, r)
	}); err != nil {
		return nil, fmt.Errorf("couldn't register /metrics: %w", err)
	}
	return http.MaxBytesHandler(readBody(mux, limit), limit), nil
}

// readBody reads the request body, which http.MaxBytesHandler bounds,
// before the mux sees it, so that an oversized body is refused with 413
// (rather than grpc-gateway's 400 for a body that fails to decode), whether
// or not it announced its length.
func readBody(mux *runtime.ServeMux, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			tooLarge(mux, w, r, limit)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(r.Body)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				tooLarge(mux, w, r, limit)
				return
			}
			if err != nil {
				httpError(mux, w, r, http.StatusBadRequest, provenance.KindInvalid, "body", "couldn't read the request body")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		mux.ServeHTTP(w, r)
	})
}

func tooLarge(mux *runtime.ServeMux, w http.ResponseWriter, r *http.Request, limit int64) {
	// The rest of an oversized body is not worth reading.
	w.Header().Set("Connection", "close")
	httpError(mux, w, r, http.StatusRequestEntityTooLarge, provenance.KindInvalid, "body", "larger than "+strconv.FormatInt(limit, 10)+" bytes")
}

// httpError answers an error found before any gRPC call, in the same form
// as the mapped ones, with an explicit HTTP status.
func httpError(mux *runtime.ServeMux, w http.ResponseWriter, r *http.Request, httpStatus int, k provenance.Kind, field, reason string) {
	e := &provenance.Error{Kind: k, Field: field, Reason: reason}
	st, _ := errorStatus(e)
	_, out := runtime.MarshalerForRequest(mux, r)
	runtime.HTTPError(r.Context(), mux, out, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: st.Err()})
}

// httpErrorHandler is grpc-gateway's default error handler, plus a
// Retry-After header for statuses with a google.rpc.RetryInfo and an
// RFC 6750 WWW-Authenticate header on 401 (the default one would carry the
// message).
func httpErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	inner := err
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		inner = hse.Err
	}
	st := status.Convert(inner)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			secs := math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
		}
	}
	if st.Code() == codes.Unauthenticated {
		w = &headerOnWrite{ResponseWriter: w, key: "WWW-Authenticate", value: `Bearer realm="vitalproof"`}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// routingErrorHandler answers a known path with the wrong method with 405
// (grpc-gateway's default says 501); other routing errors keep the default.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	err := status.Error(codes.Unimplemented, http.StatusText(httpStatus))
	runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: err})
}

// strictQueryParser is grpc-gateway's query parser, except that it refuses
// a parameter that names no field of the request (as the JSON decoder
// refuses unknown fields) rather than ignoring it, so that a misspelt
// tree_size cannot silently mean the latest tree.
type strictQueryParser struct{ runtime.DefaultQueryParser }

func (p strictQueryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	fields := msg.ProtoReflect().Descriptor().Fields()
	for key := range values {
		name, _, _ := strings.Cut(key, ".")
		name, _, _ = strings.Cut(name, "[")
		if fields.ByName(protoreflect.Name(name)) == nil && fields.ByJSONName(name) == nil {
			return fmt.Errorf("unknown query parameter %q", key)
		}
	}
	return p.DefaultQueryParser.Parse(msg, values, filter)
}

// headerOnWrite sets a header just before the status line is written,
// overriding what the wrapped handler set.
type headerOnWrite struct {
	http.ResponseWriter
	key, value string
}

func (h *headerOnWrite) WriteHeader(code int) {
	h.Header().Set(h.key, h.value)
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerOnWrite) Write(b []byte) (int, error) {
	h.Header().Set(h.key, h.value)
	return h.ResponseWriter.Write(b)
}

// checkpointText serves the latest signed checkpoint as a plain note,
// through the ledger's GetCheckpoint.
func checkpointText(mux *runtime.ServeMux, c vitalproofv1.LedgerServiceClient) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, vitalproofv1.LedgerService_GetCheckpoint_FullMethodName, runtime.WithHTTPPathPattern(checkpointTextPath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		resp, err := c.GetCheckpoint(ctx, &vitalproofv1.GetCheckpointRequest{})
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = io.WriteString(w, resp.GetCheckpoint())
	}
}

// submitFHIR serves POST /api/v1/gateway/fhir: the body is the FHIR
// resource itself, passed to the gateway's SubmitFHIR.
func submitFHIR(mux *runtime.ServeMux, c vitalproofv1.GatewayServiceClient) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
			httpError(mux, w, r, http.StatusUnsupportedMediaType, provenance.KindInvalid, "Content-Type", "must be application/fhir+json or application/json")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			httpError(mux, w, r, http.StatusBadRequest, provenance.KindInvalid, "body", "couldn't read the request body")
			return
		}
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, vitalproofv1.GatewayService_SubmitFHIR_FullMethodName, runtime.WithHTTPPathPattern(fhirPath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := c.SubmitFHIR(ctx, &vitalproofv1.SubmitFHIRRequest{Resource: body}, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, out, w, r, resp)
	}
}
