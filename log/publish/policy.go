package publish

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// maxPolicySize bounds the tlog-policy text New accepts.
const maxPolicySize = 64 << 10

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

// parsePolicy parses tlog-policy text (c2sp.org/tlog-policy):
//
//	log <vkey> [url]
//	witness <name> <vkey> <url>
//	group <name> <k|any|all> <member>...
//	quorum <name|none>
//
// torchwood.ParsePolicy decides what the text means (and so whether a quorum
// holds), after parsePolicy has refused what would make it panic; parsePolicy
// reads, of the same lines, the log keys and each
// witness's name, key and URL, which torchwood's Policy does not expose.
// Lines are split the way torchwood splits them: text after '#' is ignored,
// fields are separated by white space.
//
// The publisher contacts every witness, so each must have an absolute http
// or https URL without query or fragment (the URL is the submission prefix
// to which "/add-checkpoint" is appended); witness keys must be distinct.
// Errors quote line numbers, never the text.
func parsePolicy(text []byte) (*policy, error) {
	if len(text) > maxPolicySize {
		return nil, fmt.Errorf("policy is larger than %d bytes", maxPolicySize)
	}
	p := &policy{}
	type key struct {
		name string
		hash uint32
	}
	keys := make(map[key]bool)
	for i, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			// torchwood v0.9.0 skips only lines of spaces and tabs, and
			// panics on a line of other white space.
			if strings.Trim(line, " \t") != "" {
				return nil, fmt.Errorf("policy line %d: white space other than spaces and tabs", i+1)
			}
			continue
		}
		switch fields[0] {
		case "log":
			if len(fields) < 2 {
				return nil, fmt.Errorf("policy line %d: want \"log <vkey> [url]\"", i+1)
			}
			v, err := note.NewVerifier(fields[1])
			if err != nil {
				return nil, fmt.Errorf("policy line %d: invalid log key: %w", i+1, err)
			}
			p.logs = append(p.logs, v)
		case "witness":
			if len(fields) != 4 {
				return nil, fmt.Errorf("policy line %d: want \"witness <name> <vkey> <url>\"", i+1)
			}
			v, err := torchwood.NewCosignatureVerifier(fields[2])
			if err != nil {
				return nil, fmt.Errorf("policy line %d: invalid witness key: %w", i+1, err)
			}
			u, err := parseWitnessURL(fields[3])
			if err != nil {
				return nil, fmt.Errorf("policy line %d: %w", i+1, err)
			}
			k := key{v.Name(), v.KeyHash()}
			if keys[k] {
				return nil, fmt.Errorf("policy line %d: witness key %s+%08x is listed twice", i+1, k.name, k.hash)
			}
			keys[k] = true
			p.witnesses = append(p.witnesses, witnessSpec{name: fields[1], url: u, verifier: v})
		}
	}
	tw, err := torchwood.ParsePolicy(text)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse policy: %w", err)
	}
	p.Policy = tw
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
