package api

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
)

// TestMethodAccessComplete checks that the access table has a rule for
// every method of every vitalproof service, and no rule for a method that
// does not exist.
func TestMethodAccessComplete(t *testing.T) {
	methods := map[string]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("vitalproof.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				methods["/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name())] = true
			}
		}
		return true
	})
	if len(methods) < 12 {
		t.Fatalf("found %d methods; the generated package is not linked in?", len(methods))
	}
	for m := range methods {
		if _, ok := methodAccess[m]; !ok {
			t.Errorf("no access rule for %s", m)
		}
	}
	for m, acc := range methodAccess {
		if !methods[m] {
			t.Errorf("access rule for unknown method %s", m)
		}
		if !acc.public && len(acc.roles) == 0 {
			t.Errorf("%s: rule admits nobody", m)
		}
		if !strings.HasPrefix(m, servicePrefix) {
			t.Errorf("%s does not start with %s", m, servicePrefix)
		}
	}
}

func TestAuthorize(t *testing.T) {
	ledger := NewLedgerServer(newFakeLedger())
	gateway := NewGatewayServer(&fakeGateway{}, nil)
	tests := []struct {
		name   string
		server any
		method string
		auth   []string // authorization metadata values
		kind   provenance.Kind
		ok     bool
		want   provenance.Principal // when ok and the method is not public
	}{
		{"admin registers", ledger, vitalproofv1.LedgerService_RegisterHospital_FullMethodName, []string{"Bearer " + adminKey}, 0, true, ledgerKeys[adminKey]},
		{"scheme is case-insensitive", ledger, vitalproofv1.LedgerService_RegisterHospital_FullMethodName, []string{"bearer  " + adminKey + " "}, 0, true, ledgerKeys[adminKey]},
		{"first value counts", ledger, vitalproofv1.LedgerService_GetDevice_FullMethodName, []string{"Bearer " + hospitalKey, "Bearer " + adminKey}, 0, true, ledgerKeys[hospitalKey]},
		{"hospital may not register", ledger, vitalproofv1.LedgerService_RegisterDevice_FullMethodName, []string{"Bearer " + hospitalKey}, provenance.KindPermission, false, provenance.Principal{}},
		{"hospital submits", ledger, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, []string{"Bearer " + hospitalKey}, 0, true, ledgerKeys[hospitalKey]},
		{"admin may not submit", ledger, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, []string{"Bearer " + adminKey}, provenance.KindPermission, false, provenance.Principal{}},
		{"missing", ledger, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, nil, provenance.KindUnauthenticated, false, provenance.Principal{}},
		{"empty", ledger, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, []string{" "}, provenance.KindUnauthenticated, false, provenance.Principal{}},
		{"basic scheme", ledger, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, []string{"Basic aGk6dGhlcmU="}, provenance.KindUnauthenticated, false, provenance.Principal{}},
		{"bearer without key", ledger, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, []string{"Bearer"}, provenance.KindUnauthenticated, false, provenance.Principal{}},
		{"unknown key", ledger, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, []string{"Bearer x"}, provenance.KindUnauthenticated, false, provenance.Principal{}},
		{"public read", ledger, vitalproofv1.LedgerService_GetCheckpoint_FullMethodName, nil, 0, true, provenance.Principal{}},
		{"public read ignores keys", ledger, vitalproofv1.LedgerService_GetEntry_FullMethodName, []string{"Bearer x"}, 0, true, provenance.Principal{}},
		{"submitter submits", gateway, vitalproofv1.GatewayService_SubmitFHIR_FullMethodName, []string{"Bearer " + submitterKey}, 0, true, gatewayKeys[submitterKey]},
		{"reader reads", gateway, vitalproofv1.GatewayService_GetReceipt_FullMethodName, []string{"Bearer " + readerKey}, 0, true, gatewayKeys[readerKey]},
		{"reader may not submit", gateway, vitalproofv1.GatewayService_SubmitBatch_FullMethodName, []string{"Bearer " + readerKey}, provenance.KindPermission, false, provenance.Principal{}},
		{"keys are per service", gateway, vitalproofv1.GatewayService_SubmitBatch_FullMethodName, []string{"Bearer " + hospitalKey}, provenance.KindUnauthenticated, false, provenance.Principal{}},
		{"method without a rule", gateway, "/vitalproof.v1.GatewayService/DeleteEverything", []string{"Bearer " + adminKey}, provenance.KindPermission, false, provenance.Principal{}},
		{"other services are left alone", nil, healthpb.Health_Check_FullMethodName, nil, 0, true, provenance.Principal{}},
		{"service without authenticator", struct{}{}, vitalproofv1.LedgerService_SubmitEntries_FullMethodName, []string{"Bearer " + hospitalKey}, provenance.KindInternal, false, provenance.Principal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.auth != nil {
				md := metadata.MD{}
				md.Append("authorization", tt.auth...)
				ctx = metadata.NewIncomingContext(ctx, md)
			}
			var got provenance.Principal
			var gotOK bool
			_, err := unaryAuth(ctx, nil, &grpc.UnaryServerInfo{Server: tt.server, FullMethod: tt.method},
				func(ctx context.Context, _ any) (any, error) {
					got, gotOK = PrincipalFrom(ctx)
					return nil, nil
				})
			if !tt.ok {
				if err == nil {
					t.Fatal("authorized")
				}
				if k := provenance.KindOf(err); k != tt.kind {
					t.Errorf("kind %v; want %v (%v)", k, tt.kind, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if wantOK := tt.want != (provenance.Principal{}); gotOK != wantOK || got != tt.want {
				t.Errorf("PrincipalFrom = %+v, %v; want %+v, %v", got, gotOK, tt.want, wantOK)
			}
		})
	}
}

// TestGRPC drives the services over gRPC: the same interceptors as REST,
// and the ledger client on top.
func TestGRPC(t *testing.T) {
	e := newTestEnv(t, HTTPOptions{Ledger: true})
	ctx := t.Context()
	lc := vitalproofv1.NewLedgerServiceClient(e.conn)

	if _, err := lc.GetCheckpoint(ctx, &vitalproofv1.GetCheckpointRequest{}); err != nil {
		t.Fatalf("public GetCheckpoint: %v", err)
	}
	_, err := lc.GetDevice(ctx, &vitalproofv1.GetDeviceRequest{DeviceId: "d1"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetDevice without key: %v", err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminKey)
	d, err := lc.GetDevice(actx, &vitalproofv1.GetDeviceRequest{DeviceId: "d1"})
	if err != nil || d.GetHospitalId() != "h1" || d.GetStatus() != "active" || len(d.GetPublicKey()) != 32 {
		t.Errorf("GetDevice = %v, %v", d, err)
	}
	if _, err := lc.GetDevice(actx, &vitalproofv1.GetDeviceRequest{DeviceId: "panic"}); status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
		t.Errorf("panicking GetDevice: %v", err)
	}
	// The server survived the panic.
	if _, err := lc.GetCheckpoint(ctx, &vitalproofv1.GetCheckpointRequest{}); err != nil {
		t.Fatalf("GetCheckpoint after a panic: %v", err)
	}
	hc := healthpb.NewHealthClient(e.conn)
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v", r, err)
	}
}

func FuzzBearerKey(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "Bearer", "Bearer  ", "Basic abc", "", " Bearer x y ", "Bearer\tx", "BEARER é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs("authorization", v))
		key, err := bearerKey(ctx)
		if err != nil {
			if provenance.KindOf(err) != provenance.KindUnauthenticated {
				t.Fatalf("error of kind %v", provenance.KindOf(err))
			}
			// The message is one of two constants: it never echoes the header.
			if msg := err.Error(); !strings.HasPrefix(msg, "missing API key") && !strings.HasPrefix(msg, "malformed authorization") {
				t.Fatalf("error %q", msg)
			}
			return
		}
		if key == "" || key != strings.TrimSpace(key) {
			t.Fatalf("key %q", key)
		}
		// The canonical form parses to the same key.
		ctx = metadata.NewIncomingContext(t.Context(), metadata.Pairs("authorization", "Bearer "+key))
		if again, err := bearerKey(ctx); err != nil || again != key {
			t.Fatalf("Bearer %q parsed as %q, %v", key, again, err)
		}
	})
}
