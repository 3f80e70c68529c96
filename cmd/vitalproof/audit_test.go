package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vitalproof/vitalproof/zk/audit"
	"github.com/vitalproof/vitalproof/zk/audit/audittest"
	"github.com/vitalproof/vitalproof/zk/keys"
)

// TestAuditVerify runs `vitalproof audit verify` on real bundles and on
// tampered ones: it must succeed only when every bundle verifies, say why a
// bundle fails, and flag development keys.
func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	f := audittest.Shared(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	valid := audittest.Bundle(t, f.Parts(t, 2, 6, audittest.Params, 0))
	good := write("good.vpaudit", valid)
	// The same bundle with an entry left out of the middle.
	b, err := audit.Parse(valid)
	if err != nil {
		t.Fatal(err)
	}
	b.Entries = append(b.Entries[:1:1], b.Entries[2:]...)
	gap, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	gapped := write("gap.vpaudit", gap)
	policy := write("policy.txt", f.Policy)
	registrar := write("registrar.vkey", []byte(f.RegistrarVkey+"\n"))

	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := auditVerify(ctx, &out, args)
		return out.String(), err
	}

	out, err := run("--policy", policy, "--keys", f.KeyDir, good)
	if err != nil {
		t.Fatalf("valid bundle: %v\n%s", err, out)
	}
	for _, want := range []string{"OK   " + good, "device " + audittest.Device, "4 entries (seq 3 to 6)", keys.UnsafeWarning,
		"1 of 1 audit bundles verify", "1 with development keys, UNSAFE FOR PRODUCTION", "was not checked"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = run("--policy", policy, "--keys", f.KeyDir, "--registrar-vkey", registrar, good)
	if err != nil || strings.Contains(out, "was not checked") {
		t.Errorf("with the registrar's key: %v\n%s", err, out)
	}

	out, err = run("-q", "--policy", policy, "--keys", f.KeyDir, good, gapped, filepath.Join(dir, "missing.vpaudit"))
	if err == nil {
		t.Fatalf("a tampered bundle verified:\n%s", out)
	}
	for _, want := range []string{"FAIL " + gapped + ": ", audit.ErrIncomplete.Error(), "FAIL " + filepath.Join(dir, "missing.vpaudit"), "1 of 3 audit bundles verify"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "OK   ") {
		t.Errorf("-q printed a success:\n%s", out)
	}

	// Keys that do not hold the bundle's fingerprint.
	if out, err := run("--policy", policy, "--keys", t.TempDir(), good); err == nil || !strings.Contains(out, audit.ErrUnknownKey.Error()) {
		t.Errorf("empty key directory: %v\n%s", err, out)
	}
	for name, args := range map[string][]string{
		"no subcommand": nil,
		"no policy":     {"verify", "--keys", f.KeyDir, good},
		"no keys":       {"verify", "--policy", policy, good},
		"no bundle":     {"verify", "--policy", policy, "--keys", f.KeyDir},
	} {
		var ue usageError
		if err := cmdAudit(ctx, args); !asUsage(err, &ue) {
			t.Errorf("%s: err = %v, want a usage error", name, err)
		}
	}
}
