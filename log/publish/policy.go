package publish

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log/quorum"
)

// maxPolicySize bounds the tlog-policy text New accepts.
const maxPolicySize = quorum.MaxPolicySize

// witnessSpec is one "witness" line of the policy.
type witnessSpec struct {
	// name is the witness's component name in the policy, which groups
	// refer to and metrics and logs show. It is not necessarily its key's
	// name.
	name string
	// url is the witness's tlog-witness submission prefix.
	url string
	// verifier checks its cosignatures (cosignature/v1).
	verifier *torchwood.CosignatureVerifier
}

// policy is a parsed tlog-policy: torchwood's Policy, which decides whether
// a checkpoint's signatures satisfy the quorum, and what torchwood does not
// expose: the log keys and the witnesses' URLs.
type policy struct {
	torchwood.Policy
	logs      []note.Verifier
	witnesses []witnessSpec
}

// parsePolicy parses tlog-policy text (c2sp.org/tlog-policy) with
// quorum.ParsePolicy (torchwood decides what the text means):
//
//	log <vkey> [url]
//	witness <name> <vkey> <url>
//	group <name> <k|any|all> <member>...
//	quorum <name|none>
//
// The publisher contacts every witness, so each must have an absolute http
// or https URL without query or fragment (the URL is the submission prefix
// to which "/add-checkpoint" is appended); witness keys must be distinct.
// Errors quote witness names, never the text.
func parsePolicy(text []byte) (*policy, error) {
	qp, err := quorum.ParsePolicy(text)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse policy: %w", err)
	}
	p := &policy{Policy: qp.Torchwood(), logs: qp.Logs()}
	type key struct {
		name string
		hash uint32
	}
	keys := make(map[key]bool)
	for _, w := range qp.Witnesses() {
		if w.URL == "" || strings.Contains(w.URL, " ") {
			return nil, fmt.Errorf("policy: witness %q has no URL: want \"witness <name> <vkey> <url>\"", w.Name)
		}
		u, err := parseWitnessURL(w.URL)
		if err != nil {
			return nil, fmt.Errorf("policy: witness %q: %w", w.Name, err)
		}
		k := key{w.Verifier.Name(), w.Verifier.KeyHash()}
		if keys[k] {
			return nil, fmt.Errorf("policy: witness key %s+%08x is listed twice", k.name, k.hash)
		}
		keys[k] = true
		p.witnesses = append(p.witnesses, witnessSpec{name: w.Name, url: u, verifier: w.Verifier})
	}
	return p, nil
}

var errWitnessURL = errors.New("witness URL must be an absolute http(s) URL without query, fragment or credentials")

// parseWitnessURL checks the URL of a witness line and returns it in its
// canonical form.
func parseWitnessURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", errWitnessURL
	}
	return u.String(), nil
}
