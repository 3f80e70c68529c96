package audit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consensys/gnark/logger"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/logtest"
	"github.com/vitalproof/vitalproof/zk/audit"
	"github.com/vitalproof/vitalproof/zk/audit/audittest"
	"github.com/vitalproof/vitalproof/zk/keys"
)

func TestMain(m *testing.M) {
	logger.Disable()
	os.Exit(m.Run())
}

// The bundle of most tests: entries seq 3 to 6 (indices 2 to 5 of the
// chain), bracketed by seq 2 and seq 7.
const from, to = 2, 6

// keyDir opens the fixture's published verifying keys.
func keyDir(t *testing.T, f *audittest.Fixture) audit.KeyStore {
	t.Helper()
	kd, err := audit.OpenKeyDir(context.Background(), f.KeyDir)
	if err != nil {
		t.Fatal(err)
	}
	return kd
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	f := audittest.Shared(t)
	p := f.Parts(t, from, to, audittest.Params, 0)
	b := audittest.Bundle(t, p)
	r, err := audit.Verify(ctx, b, f.Policy, keyDir(t, f))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	first, last := f.Chain[from].Entry.Header, f.Chain[to-1].Entry.Header
	readings := 0
	for _, c := range f.Chain[from:to] {
		readings += len(c.Readings)
	}
	want := audit.Result{
		Kinds: audittest.Kinds, Params: audittest.Params, DeviceID: audittest.Device, Metric: audittest.Metric,
		PeriodStart: time.Unix(first.WindowStart, 0).UTC(), PeriodEnd: time.Unix(last.WindowEnd, 0).UTC(),
		Entries: to - from, Readings: readings, FirstSeq: first.Seq, LastSeq: last.Seq,
		Registrar: audittest.Registrar, Origin: audittest.Origin, TreeSize: f.Root.Size,
		Circuit: p.Proof.Circuit, VerifyingKey: p.Proof.VerifyingKey, Unsafe: true,
	}
	got := *r
	got.Registration = audit.Result{}.Registration
	if !equalResults(got, want) {
		t.Errorf("result:\n got %+v\nwant %+v", got, want)
	}
	if r.Registration.DeviceID != audittest.Device || r.Registration.Hospital != audittest.Hospital {
		t.Errorf("registration = %+v", r.Registration)
	}
	if !slices.Contains(r.Warnings(), keys.UnsafeWarning) {
		t.Errorf("development keys not flagged: %q", r.Warnings())
	}
	if s := r.String(); !strings.Contains(s, r.Claim()) || !strings.Contains(s, audittest.Device) {
		t.Errorf("String() = %q", s)
	}
	if c := r.Claim(); c != "every reading in [40, 400] mg/dL; at least 70% of readings in [70, 180] mg/dL" {
		t.Errorf("Claim() = %q", c)
	}

	// The registrar's key, when given, is checked.
	r, err = audit.Verify(ctx, b, f.Policy, keyDir(t, f), audit.WithRegistrar(f.RegistrarKey))
	if err != nil || !r.RegistrarVerified {
		t.Errorf("with the registrar's key: %v, verified %v", err, r != nil && r.RegistrarVerified)
	}
	// The same keys held in memory, as a gateway holds them.
	if _, err := audit.Verify(ctx, b, f.Policy, audit.KeysFor(f.Keys)); err != nil {
		t.Errorf("with in-memory keys: %v", err)
	}
	// A bundle from the chain's first entry needs no before-bracket.
	b0 := audittest.Bundle(t, f.Parts(t, 0, 3, audittest.Params, 0))
	if r, err := audit.Verify(ctx, b0, f.Policy, keyDir(t, f)); err != nil || r.FirstSeq != 1 {
		t.Errorf("bundle from seq 1: %v", err)
	}
}

func equalResults(a, b audit.Result) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestVerifyTampered changes one thing of a valid bundle at a time; each
// must fail with its own reason.
func TestVerifyTampered(t *testing.T) {
	ctx := context.Background()
	f := audittest.Shared(t)
	p := f.Parts(t, from, to, audittest.Params, 0)
	valid := audittest.Bundle(t, p)
	ks := keyDir(t, f)

	// A checkpoint of the same log signed by another key.
	otherKey, _, err := checkpoint.GenerateKey(audittest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := checkpoint.NewSigner(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	otherCheckpoint, err := otherSigner.Sign(f.Root)
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoints by the log's key of other trees: the same leaves and one
	// more, and a fork of the same size.
	grown := logtest.NewMemLog()
	leaves, err := f.Log.Leaves(ctx, 0, f.Root.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := grown.Append(ctx, append(leaves, []byte("one more leaf"))); err != nil {
		t.Fatal(err)
	}
	largerCheckpoint, err := f.LogSigner.Sign(grown.Integrate())
	if err != nil {
		t.Fatal(err)
	}
	fork := f.Root
	fork.Hash[0] ^= 1
	forkCheckpoint, err := f.LogSigner.Sign(fork)
	if err != nil {
		t.Fatal(err)
	}
	// A key store whose key with the bundle's fingerprint claims another
	// circuit.
	relabelled := t.TempDir()
	k := *f.Keys
	k.Meta.Circuit = strings.Replace(k.Meta.Circuit, "/4x6", "/5x6", 1)
	if err := audittest.WriteVerifyingKey(relabelled, &k); err != nil {
		t.Fatal(err)
	}
	relabelledStore, err := audit.OpenKeyDir(ctx, relabelled)
	if err != nil {
		t.Fatal(err)
	}

	size := f.Root.Size
	tests := []struct {
		name   string
		edit   func(b *audit.Bundle)
		policy []byte
		ks     audit.KeyStore
		want   error
	}{
		{name: "changed entry byte", want: audit.ErrInclusion, edit: func(b *audit.Bundle) {
			e := b.Entries[1].Bytes
			i := bytes.Index(e, []byte("commitment ")) + len("commitment ") + 3
			e[i] = map[bool]byte{true: 'B', false: 'A'}[e[i] == 'A']
		}},
		{name: "bad inclusion proof", want: audit.ErrInclusion, edit: func(b *audit.Bundle) { b.Entries[2].Proof[0][0] ^= 1 }},
		{name: "wrong index", want: audit.ErrInclusion, edit: func(b *audit.Bundle) { b.Entries[2].Index++ }},
		{name: "bad registration proof", want: audit.ErrInclusion, edit: func(b *audit.Bundle) { b.Registration.Proof[1][5] ^= 1 }},
		{name: "checkpoint signed by another key", want: audit.ErrCheckpoint, edit: func(b *audit.Bundle) { b.Checkpoint = otherCheckpoint }},
		{name: "checkpoint of a larger tree", want: audit.ErrInclusion, edit: func(b *audit.Bundle) { b.Checkpoint = largerCheckpoint }},
		{name: "checkpoint of a fork", want: audit.ErrInclusion, edit: func(b *audit.Bundle) { b.Checkpoint = forkCheckpoint }},
		{name: "registration of another device", want: audit.ErrRegistration, edit: func(b *audit.Bundle) {
			b.Registration = f.Leaf(t, f.OtherRegistration, size)
		}},
		{name: "foreign entry", want: audit.ErrSignature, edit: func(b *audit.Bundle) { b.Entries[1] = f.Leaf(t, f.OtherEntry, size) }},
		{name: "gateway-attested entry", want: audit.ErrAttestation, edit: func(b *audit.Bundle) { b.Entries[1] = f.Leaf(t, f.GatewayEntry, size) }},
		{name: "entry left out of the middle", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) {
			b.Entries = slices.Delete(b.Entries, 1, 2)
		}},
		{name: "entries swapped", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) {
			b.Entries[1], b.Entries[2] = b.Entries[2], b.Entries[1]
		}},
		{name: "first entry dropped with its bracket kept", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) { b.Entries = b.Entries[1:] }},
		{name: "last entry dropped with its bracket kept", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) { b.Entries = b.Entries[:len(b.Entries)-1] }},
		{name: "missing before bracket", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) { b.Before = nil }},
		{name: "before bracket not adjacent", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) {
			l := f.Leaf(t, f.Chain[from-2].Entry.Bytes, size)
			b.Before = &l
		}},
		{name: "missing after bracket", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) { b.After = nil }},
		{name: "after bracket inside the period", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) { b.PeriodEnd += 1800 }},
		{name: "before bracket inside the period", want: audit.ErrIncomplete, edit: func(b *audit.Bundle) { b.PeriodStart -= 1800 }},
		{name: "period ends before the last entry", want: audit.ErrStatement, edit: func(b *audit.Bundle) { b.PeriodEnd -= 1800 }},
		{name: "parameter changed", want: audit.ErrProof, edit: func(b *audit.Bundle) { b.Params.TIRPercent = 71 }},
		{name: "range changed", want: audit.ErrProof, edit: func(b *audit.Bundle) { b.Params.RangeHi = 399 }},
		{name: "parameter out of range", want: audit.ErrStatement, edit: func(b *audit.Bundle) { b.Params.TIRPercent = 101 }},
		{name: "wrong fingerprint", want: audit.ErrUnknownKey, edit: func(b *audit.Bundle) { b.Proof.VerifyingKey[0] ^= 1 }},
		{name: "keys claimed from a ceremony", want: audit.ErrKeyMismatch, edit: func(b *audit.Bundle) { b.Development = false }},
		{name: "key of another circuit", want: audit.ErrKeyMismatch, ks: relabelledStore},
		{name: "malformed policy", want: audit.ErrPolicy, policy: []byte("log not-a-key\nquorum none\n")},
		{name: "policy with stray white space", want: audit.ErrPolicy, policy: append(bytes.Clone(f.Policy), "\v\n"...)},
		{name: "policy of another log", want: audit.ErrCheckpoint, policy: []byte("log " + otherSigner.VerifierKey() + "\nquorum none\n")},
		{name: "witness quorum not met", want: audit.ErrCheckpoint, policy: f.WitnessPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := valid
			if tt.edit != nil {
				b, err := audit.Parse(valid)
				if err != nil {
					t.Fatal(err)
				}
				proof := *b.Proof
				b.Proof = &proof
				tt.edit(b)
				if bundle, err = b.Marshal(); err != nil {
					t.Fatal(err)
				}
			}
			policy, store := f.Policy, ks
			if tt.policy != nil {
				policy = tt.policy
			}
			if tt.ks != nil {
				store = tt.ks
			}
			r, err := audit.Verify(ctx, bundle, policy, store)
			t.Log(err)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, %v; want an error wrapping %q", r, err, tt.want)
			}
			for _, sentinel := range sentinels {
				if sentinel != tt.want && errors.Is(err, sentinel) {
					t.Errorf("error %q also wraps %q", err, sentinel)
				}
			}
			for _, salt := range f.Salts() {
				if bytes.Contains([]byte(err.Error()), salt) {
					t.Errorf("error %q holds a salt", err)
				}
			}
		})
	}

	// A flipped byte of the Groth16 proof (in its Krs point) that still
	// parses.
	parsed, err := audit.Parse(valid)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := parsed.Proof.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	flipped := false
	for j := len(raw) - 96; j < len(raw)-64 && !flipped; j++ {
		c := bytes.Clone(raw)
		c[j] ^= 1
		bundle := bytes.Replace(valid, []byte(b64(raw)), []byte(b64(c)), 1)
		if _, err := audit.Parse(bundle); err != nil {
			continue
		}
		flipped = true
		if _, err := audit.Verify(ctx, bundle, f.Policy, ks); !errors.Is(err, audit.ErrProof) {
			t.Errorf("flipped proof byte: %v, want ErrProof", err)
		}
	}
	if !flipped {
		t.Error("found no proof byte whose flip still parses")
	}
	if _, err := audit.Verify(ctx, valid[:len(valid)/2], f.Policy, ks); !errors.Is(err, audit.ErrMalformed) {
		t.Errorf("truncated bundle: %v, want ErrMalformed", err)
	}
}

var sentinels = []error{audit.ErrMalformed, audit.ErrPolicy, audit.ErrCheckpoint, audit.ErrInclusion, audit.ErrRegistration,
	audit.ErrAttestation, audit.ErrSignature, audit.ErrIncomplete, audit.ErrStatement, audit.ErrUnknownKey,
	audit.ErrKeyMismatch, audit.ErrProof}

func TestVerifyRegistrar(t *testing.T) {
	ctx := context.Background()
	f := audittest.Shared(t)
	b := audittest.Bundle(t, f.Parts(t, from, to, audittest.Params, 0))
	_, wrong, err := note.GenerateKey(nil, audittest.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(ctx, b, f.Policy, keyDir(t, f), audit.WithRegistrar(v)); !errors.Is(err, audit.ErrRegistration) {
		t.Errorf("another registrar key: %v, want ErrRegistration", err)
	}
}

// TestVerifyHead checks the claim that the last entry is its chain's head:
// allowed only when a witness cosigned the checkpoint before the period
// ended.
func TestVerifyHead(t *testing.T) {
	ctx := context.Background()
	f := audittest.Shared(t)
	last := f.Chain[len(f.Chain)-1].Entry.Header
	periodEnd := last.WindowEnd + 2*3600
	p := f.Parts(t, len(f.Chain)-4, len(f.Chain), audittest.Params, periodEnd)
	if p.After != nil {
		t.Fatal("test bug: the bundle has an after-bracket")
	}
	for _, tt := range []struct {
		name     string
		cosigned time.Time // zero: no cosignature
		policy   []byte
		ok       bool
	}{
		{"cosigned before the period's end", time.Unix(periodEnd-1, 0), f.WitnessPolicy, true},
		{"cosigned at the period's end", time.Unix(periodEnd, 0), f.WitnessPolicy, false},
		{"cosigned after the period's end", time.Unix(periodEnd+86400, 0), f.WitnessPolicy, false},
		{"cosignature the policy does not know", time.Unix(periodEnd-1, 0), f.Policy, false},
		{"no cosignature", time.Time{}, f.Policy, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := *p
			if !tt.cosigned.IsZero() {
				q.Checkpoint = f.Cosign(t, f.Checkpoint, tt.cosigned)
			}
			b := audittest.Bundle(t, &q)
			r, err := audit.Verify(ctx, b, tt.policy, keyDir(t, f))
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if !r.HeadClaimed || !r.CosignedAt.Equal(tt.cosigned) || r.LastSeq != last.Seq {
					t.Errorf("result: head %v, cosigned %v, last seq %d", r.HeadClaimed, r.CosignedAt, r.LastSeq)
				}
				if !slices.ContainsFunc(r.Warnings(), func(w string) bool { return strings.Contains(w, "head") }) {
					t.Errorf("head claim not among the warnings: %q", r.Warnings())
				}
				return
			}
			if !errors.Is(err, audit.ErrIncomplete) {
				t.Fatalf("Verify = %v, want ErrIncomplete", err)
			}
		})
	}
	// A bundle with its after-bracket verifies against a cosigned
	// checkpoint whatever its time.
	q := *f.Parts(t, from, to, audittest.Params, 0)
	q.Checkpoint = f.Cosign(t, f.Checkpoint, time.Unix(last.WindowEnd+86400, 0))
	r, err := audit.Verify(ctx, audittest.Bundle(t, &q), f.WitnessPolicy, keyDir(t, f))
	if err != nil || r.HeadClaimed {
		t.Errorf("cosigned bundle with both brackets: %v", err)
	}
}

// TestBuildRefuses checks that Build refuses inconsistent parts with the
// sentinel Verify would use.
func TestBuildRefuses(t *testing.T) {
	f := audittest.Shared(t)
	p := f.Parts(t, from, to, audittest.Params, 0)
	size := f.Root.Size
	tests := []struct {
		name string
		edit func(p *audit.Parts)
		want error
	}{
		{"statement over other entries", func(p *audit.Parts) {
			s := *p.Statement
			s.Entries = slices.Clone(s.Entries)
			s.Entries[0].Count--
			p.Statement = &s
		}, audit.ErrStatement},
		{"missing before bracket", func(p *audit.Parts) { p.Before = nil }, audit.ErrIncomplete},
		{"entry left out", func(p *audit.Parts) { p.Entries = slices.Delete(slices.Clone(p.Entries), 1, 2) }, audit.ErrIncomplete},
		{"stale proof", func(p *audit.Parts) {
			l := f.Leaf(t, f.Chain[from].Entry.Bytes, size-1)
			p.Entries = slices.Clone(p.Entries)
			p.Entries[0] = l
		}, audit.ErrInclusion},
		{"registration of another device", func(p *audit.Parts) { p.Registration = f.Leaf(t, f.OtherRegistration, size) }, audit.ErrRegistration},
		{"registration in an entry's place", func(p *audit.Parts) {
			p.Entries = slices.Clone(p.Entries)
			p.Entries[1] = f.Leaf(t, f.Registration, size)
		}, audit.ErrMalformed},
		{"no proof", func(p *audit.Parts) { p.Proof = nil }, audit.ErrMalformed},
		{"not a checkpoint", func(p *audit.Parts) { p.Checkpoint = []byte("hello\n") }, audit.ErrCheckpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := *p
			tt.edit(&q)
			if _, err := audit.Build(&q); !errors.Is(err, tt.want) {
				t.Errorf("Build = %v, want an error wrapping %q", err, tt.want)
			}
		})
	}
}

// TestNoSecrets is the canary: no salt of the chain, in any encoding, is in
// a bundle.
func TestNoSecrets(t *testing.T) {
	f := audittest.Shared(t)
	b := audittest.Bundle(t, f.Parts(t, from, to, audittest.Params, 0))
	for _, salt := range f.Salts() {
		if bytes.Contains(b, salt) {
			t.Fatal("a salt is in the bundle")
		}
	}
	// Nor the readings: the packed words the commitment hashes, in their
	// little- or big-endian 8-byte forms, appear nowhere.
	for _, c := range f.Chain[from:to] {
		for _, r := range c.Readings {
			w := uint64(r.Offset)<<20 | uint64(r.Value)
			for _, enc := range [][]byte{be64(w), le64(w)} {
				if bytes.Contains(b, enc) {
					t.Fatal("a packed reading is in the bundle")
				}
			}
		}
	}
}

func TestKeyDir(t *testing.T) {
	ctx := context.Background()
	f := audittest.Shared(t)
	fp, err := keys.Fingerprint(f.Keys.VK)
	if err != nil {
		t.Fatal(err)
	}
	// The directory of key directories, and a key directory itself.
	for _, dir := range []string{f.KeyDir, filepath.Join(f.KeyDir, "glucose-small")} {
		kd, err := audit.OpenKeyDir(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if kd.Len() != 1 {
			t.Errorf("%s: %d keys, want 1", dir, kd.Len())
		}
		k, err := kd.VerifyingKey(ctx, fp)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if k.Meta.Circuit != f.Keys.Meta.Circuit || k.PK != nil {
			t.Errorf("%s: loaded %+v", dir, k.Meta)
		}
	}
	kd, err := audit.OpenKeyDir(ctx, f.KeyDir)
	if err != nil {
		t.Fatal(err)
	}
	other := fp
	other[0] ^= 1
	if _, err := kd.VerifyingKey(ctx, other); !errors.Is(err, audit.ErrUnknownKey) {
		t.Errorf("unknown fingerprint: %v", err)
	}
	// A key file that does not match its metadata is refused.
	corrupt := t.TempDir()
	if err := audittest.WriteVerifyingKey(filepath.Join(corrupt, "k"), f.Keys); err != nil {
		t.Fatal(err)
	}
	vk := filepath.Join(corrupt, "k", "verifying.key")
	raw, _ := os.ReadFile(vk)
	raw[len(raw)-1] ^= 1
	os.WriteFile(vk, raw, 0o644)
	kd, err = audit.OpenKeyDir(ctx, corrupt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kd.VerifyingKey(ctx, fp); err == nil {
		t.Error("a corrupt verifying key loaded")
	}
	if _, err := audit.OpenKeyDir(ctx, filepath.Join(corrupt, "missing")); err == nil {
		t.Error("a missing directory opened")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
