package api

import (
	"context"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
)

// DefaultMaxMessageBytes bounds a gRPC message either way: above
// [DefaultMaxBodyBytes], so that any body the REST handler admits fits in
// one gRPC request, and large enough for the receipts of a full
// SubmitEntries call.
const DefaultMaxMessageBytes = 16 << 20

var (
	metricRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vitalproof_api_requests_total",
		Help: "gRPC calls (REST calls included) to the VitalProof services, by method and status code.",
	}, []string{"method", "code"})
	metricLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vitalproof_api_request_seconds",
		Help:    "Duration of gRPC calls to the VitalProof services, by method.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	}, []string{"method"})
)

// Option configures [NewGRPCServer].
type Option func(*serverConfig)

type serverConfig struct {
	logger *slog.Logger
	opts   []grpc.ServerOption
}

// WithLogger sets the logger of internal errors and panics; by default
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *serverConfig) { c.logger = l }
}

// WithServerOptions adds gRPC server options (credentials, keepalive,
// further interceptors, which run outside this package's).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(c *serverConfig) { c.opts = append(c.opts, opts...) }
}

// NewGRPCServer returns a gRPC server with this package's interceptors and
// the gRPC health service (serving). Register the VitalProof services on it
// with [RegisterLedger] and [RegisterGateway]; one server may hold both.
//
// Each unary call passes, outermost first, through:
//
//  1. error mapping and metrics: a returned error becomes the status of
//     the package's error table (internal errors are logged at Warn, the
//     client only sees "internal error"), and the call is counted in
//     vitalproof_api_requests_total and vitalproof_api_request_seconds;
//  2. panic recovery: a panic becomes an internal error, logged at Error
//     with the stack's function names (never argument values, which could
//     hold a reading);
//  3. authentication and authorization by the method's access rule (see
//     the package documentation), which stores the caller for
//     [PrincipalFrom].
//
// Recovery sits inside the error mapping, so a recovered panic is still
// counted, and outside authentication, so a panicking backend
// Authenticate is recovered too.
func NewGRPCServer(opts ...Option) *grpc.Server {
	c := serverConfig{logger: slog.Default()}
	for _, o := range opts {
		o(&c)
	}
	so := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(DefaultMaxMessageBytes),
		grpc.ChainUnaryInterceptor(errorInterceptor(c.logger), recoverInterceptor(c.logger), unaryAuth),
	}
	s := grpc.NewServer(append(so, c.opts...)...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}

// DialOptions returns the options a client conn of the VitalProof services
// needs beside its credentials: it admits responses up to
// [DefaultMaxMessageBytes].
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(DefaultMaxMessageBytes),
		grpc.MaxCallSendMsgSize(DefaultMaxMessageBytes),
	)}
}

// RegisterLedger registers the ledger service, served by b, on s.
func RegisterLedger(s grpc.ServiceRegistrar, b LedgerBackend) {
	vitalproofv1.RegisterLedgerServiceServer(s, NewLedgerServer(b))
}

// RegisterGateway registers the gateway service, served by b, on s.
func RegisterGateway(s grpc.ServiceRegistrar, b GatewayBackend, a AuditBackend) {
	vitalproofv1.RegisterGatewayServiceServer(s, NewGatewayServer(b, a))
}

func errorInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(context.WithValue(ctx, loggerKey{}, log), req)
		method := info.FullMethod
		if !strings.HasPrefix(method, servicePrefix) {
			return resp, err
		}
		metricLatency.WithLabelValues(method).Observe(time.Since(start).Seconds())
		if err == nil {
			metricRequests.WithLabelValues(method, "OK").Inc()
			return resp, nil
		}
		st, internal := errorStatus(err)
		if internal {
			log.WarnContext(ctx, "internal error", "method", method, "err", err)
		}
		metricRequests.WithLabelValues(method, st.Code().String()).Inc()
		return nil, st.Err()
	}
}

type loggerKey struct{}

// logFrom returns the server's logger, which errorInterceptor puts in the
// context of each call.
func logFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// errPanic is what a recovered panic becomes: an internal error.
type errPanic struct{}

func (errPanic) Error() string { return "panic in handler" }

func recoverInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", panicValue(r), "stack", stackFunctions(3))
				resp, err = nil, errPanic{}
			}
		}()
		return handler(ctx, req)
	}
}

// panicValue describes a recovered value: the message of a runtime error
// (an index, a nil dereference), else only its type, since a panic's value
// could hold a reading.
func panicValue(r any) string {
	if re, ok := r.(goruntime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("%T", r)
}

// stackFunctions returns the calling stack as function names and lines
// only: unlike debug.Stack, it shows no argument values.
func stackFunctions(skip int) string {
	pc := make([]uintptr, 32)
	n := goruntime.Callers(skip, pc)
	frames := goruntime.CallersFrames(pc[:n])
	var b strings.Builder
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s:%d ", f.Function, f.Line)
		if !more {
			break
		}
	}
	return strings.TrimSpace(b.String())
}
