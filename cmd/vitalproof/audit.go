package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/zk/audit"
	"github.com/vitalproof/vitalproof/zk/keys"
)

const auditUsage = `usage: vitalproof audit verify --policy FILE --keys DIR [--registrar-vkey FILE] [-q] BUNDLE...
       vitalproof audit request --gateway URL --api-key-file F --statement PARTS --device ID --metric CODE --from T --to T [parameters] [--out FILE | --detach]
       vitalproof audit fetch --gateway URL --api-key-file F --id JOB [--out FILE]
       vitalproof audit decide --gateway URL --api-key-file F --id JOB (--approve | --refuse REASON)
       vitalproof audit keys --ledger URL --out DIR`

// cmdAudit runs the audit commands: verify checks .vpaudit bundles
// offline, with no network, against a tlog-policy and a directory of
// verifying keys, and prints per bundle OK or FAIL with the reason, then a
// summary (it fails if any bundle fails); request, decide and keys are a
// regulator's (request, fetch) and a hospital's (decide) side of an audit at a gateway, and the
// download of the ledger's verifying keys.
func cmdAudit(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New(auditUsage)}
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, os.Stdout, args[1:])
	case "request":
		return auditRequest(ctx, args[1:])
	case "decide":
		return auditDecide(ctx, args[1:])
	case "fetch":
		return auditFetch(ctx, args[1:])
	case "keys":
		return auditKeys(ctx, args[1:])
	}
	return usageError{errors.New(auditUsage)}
}

func auditVerify(ctx context.Context, w io.Writer, args []string) error {
	fs := newFlags("audit verify")
	policyFile := fs.String("policy", "", "tlog-policy file naming the log's key and its witnesses' quorum")
	keyDir := fs.String("keys", "", "directory of verifying key directories (metadata.json and verifying.key each); the bundle's fingerprint picks one")
	registrarFile := fs.String("registrar-vkey", "", "the registry's verifier key file: also check the registration record's signature")
	quiet := fs.Bool("q", false, "print only failures and the summary")
	if err := parse(fs, args, "policy", "keys"); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no bundle given")}
	}
	policy, err := os.ReadFile(*policyFile)
	if err != nil {
		return fmt.Errorf("couldn't read policy: %w", err)
	}
	ks, err := audit.OpenKeyDir(ctx, *keyDir)
	if err != nil {
		return err
	}
	var opts []audit.VerifyOption
	if *registrarFile != "" {
		vkey, err := readTrimmed(*registrarFile)
		if err != nil {
			return fmt.Errorf("couldn't read registrar key: %w", err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return fmt.Errorf("%s: %w", *registrarFile, err)
		}
		opts = append(opts, audit.WithRegistrar(v))
	}
	failed, unsafe := 0, 0
	for _, path := range fs.Args() {
		r, err := verifyBundleFile(ctx, path, policy, ks, opts)
		if err != nil {
			fmt.Fprintf(w, "FAIL %s: %v\n", path, err)
			failed++
			continue
		}
		if r.Unsafe {
			unsafe++
		}
		if *quiet {
			continue
		}
		fmt.Fprintf(w, "OK   %s: %s\n", path, r)
		for _, warning := range r.Warnings() {
			label := "NOTE"
			if warning == keys.UnsafeWarning {
				label = "WARNING"
			}
			fmt.Fprintf(w, "     %s: %s\n", label, warning)
		}
	}
	n := len(fs.Args())
	fmt.Fprintf(w, "%d of %d audit bundles verify against %s with the keys in %s", n-failed, n, *policyFile, *keyDir)
	if unsafe > 0 {
		fmt.Fprintf(w, "; %d with development keys, UNSAFE FOR PRODUCTION", unsafe)
	}
	fmt.Fprintln(w)
	if failed > 0 {
		return fmt.Errorf("%d audit bundles failed", failed)
	}
	return nil
}

func verifyBundleFile(ctx context.Context, path string, policy []byte, ks audit.KeyStore, opts []audit.VerifyOption) (*audit.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, audit.MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	return audit.Verify(ctx, b, policy, ks, opts...)
}
