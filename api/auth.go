package api

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
)

// access says who may call a method: anyone (public), or an authenticated
// caller with one of roles.
type access struct {
	public bool
	roles  []provenance.Role
}

var public = access{public: true}

func roles(r ...provenance.Role) access { return access{roles: r} }

// methodAccess is the one table of who may call what. A method of a
// vitalproof service that is missing here is refused to everyone
// (TestMethodAccessComplete keeps it complete).
var methodAccess = map[string]access{
	vitalproofv1.LedgerService_RegisterHospital_FullMethodName:       roles(provenance.RoleAdmin),
	vitalproofv1.LedgerService_RegisterDevice_FullMethodName:         roles(provenance.RoleAdmin),
	vitalproofv1.LedgerService_GetDevice_FullMethodName:              roles(provenance.RoleAdmin, provenance.RoleHospital, provenance.RoleManufacturer),
	vitalproofv1.LedgerService_GetDeviceHistory_FullMethodName:       roles(provenance.RoleAdmin, provenance.RoleHospital, provenance.RoleManufacturer),
	vitalproofv1.LedgerService_CheckIndex_FullMethodName:             roles(provenance.RoleAdmin),
	vitalproofv1.LedgerService_RecordEvent_FullMethodName:            roles(provenance.RoleManufacturer, provenance.RoleHospital),
	vitalproofv1.LedgerService_ProposeManufacturer_FullMethodName:    roles(provenance.RoleAdmin),
	vitalproofv1.LedgerService_ApproveManufacturer_FullMethodName:    roles(provenance.RoleHospital),
	vitalproofv1.LedgerService_GetManufacturer_FullMethodName:        roles(provenance.RoleAdmin, provenance.RoleHospital, provenance.RoleManufacturer),
	vitalproofv1.LedgerService_SubmitRegistration_FullMethodName:     roles(provenance.RoleManufacturer),
	vitalproofv1.LedgerService_SubmitEntries_FullMethodName:          roles(provenance.RoleHospital),
	vitalproofv1.LedgerService_GetEntry_FullMethodName:               public,
	vitalproofv1.LedgerService_ListEntries_FullMethodName:            public,
	vitalproofv1.LedgerService_GetInclusionProof_FullMethodName:      public,
	vitalproofv1.LedgerService_GetReceipt_FullMethodName:             public,
	vitalproofv1.LedgerService_GetCheckpoint_FullMethodName:          public,
	vitalproofv1.LedgerService_GetConsistencyProof_FullMethodName:    public,
	vitalproofv1.LedgerService_ListCheckpoints_FullMethodName:        public,
	vitalproofv1.LedgerService_GetPublishedCheckpoint_FullMethodName: public,
	vitalproofv1.LedgerService_ListVerifyingKeys_FullMethodName:      public,
	vitalproofv1.LedgerService_GetVerifyingKey_FullMethodName:        public,

	vitalproofv1.GatewayService_SubmitBatch_FullMethodName: roles(provenance.RoleSubmitter),
	vitalproofv1.GatewayService_SubmitFHIR_FullMethodName:  roles(provenance.RoleSubmitter),
	vitalproofv1.GatewayService_GetReceipt_FullMethodName:  roles(provenance.RoleSubmitter, provenance.RoleReader),
	vitalproofv1.GatewayService_CreateAudit_FullMethodName: roles(provenance.RoleRegulator),
	vitalproofv1.GatewayService_GetAudit_FullMethodName:    roles(provenance.RoleRegulator, provenance.RoleAdmin),
	vitalproofv1.GatewayService_DecideAudit_FullMethodName: roles(provenance.RoleAdmin),
}

// servicePrefix is the prefix of the full method names that methodAccess
// governs; other services on the same server (gRPC health) are left alone.
const servicePrefix = "/vitalproof."

// authenticator is implemented by the service implementations of this
// package: each authenticates against its own backend, so one interceptor
// serves a gRPC server that runs the ledger, the gateway or both.
type authenticator interface {
	authenticate(ctx context.Context, apiKey string) (provenance.Principal, error)
}

type principalKey struct{}

// PrincipalFrom returns the authenticated caller of the request ctx belongs
// to. It is false for public methods, which are called without a key.
func PrincipalFrom(ctx context.Context) (provenance.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(provenance.Principal)
	return p, ok
}

func withPrincipal(ctx context.Context, p provenance.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// unaryAuth authenticates and authorizes a call by methodAccess and stores
// the caller in the context ([PrincipalFrom]).
func unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := authorize(ctx, info)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func authorize(ctx context.Context, info *grpc.UnaryServerInfo) (context.Context, error) {
	if !strings.HasPrefix(info.FullMethod, servicePrefix) {
		return ctx, nil
	}
	acc, ok := methodAccess[info.FullMethod]
	if !ok {
		return nil, &provenance.Error{Kind: provenance.KindPermission, Reason: "method is not open to any role"}
	}
	if acc.public {
		return ctx, nil
	}
	a, ok := info.Server.(authenticator)
	if !ok {
		return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't authenticate: service has no authenticator"}
	}
	key, err := bearerKey(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.authenticate(ctx, key)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(acc.roles, p.Role) {
		return nil, &provenance.Error{Kind: provenance.KindPermission, Reason: "the API key's role (" + string(p.Role) + ") may not call this method"}
	}
	return withPrincipal(ctx, p), nil
}

// bearerKey returns the API key of the request's "authorization: Bearer
// <key>" metadata, which grpc-gateway forwards from the HTTP Authorization
// header. Only the first authorization value counts.
func bearerKey(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 || strings.TrimSpace(vals[0]) == "" {
		return "", &provenance.Error{Kind: provenance.KindUnauthenticated, Reason: `missing API key: send "Authorization: Bearer <key>"`}
	}
	scheme, key, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "Bearer") || key == "" {
		return "", &provenance.Error{Kind: provenance.KindUnauthenticated, Reason: `malformed authorization: want "Bearer <key>"`}
	}
	return key, nil
}
