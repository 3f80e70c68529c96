package quorum

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// MaxPolicySize bounds the tlog-policy text [ParsePolicy] accepts.
const MaxPolicySize = 64 << 10

// Policy is a parsed tlog-policy: torchwood's policy, which gives every
// verdict, and the structure torchwood's policy does not expose (the log
// keys, the witnesses by name, the groups and the quorum), from which a
// [Report] explains the verdict.
type Policy struct {
	tw        torchwood.Policy
	logs      []note.Verifier
	witnesses []policyWitness
	// byName maps a witness or group name to its component.
	byName map[string]policyComponent
	// quorum is the quorum's component name, "" for "quorum none".
	quorum string
}

// policyWitness is a "witness" line.
type policyWitness struct {
	name     string
	verifier *torchwood.CosignatureVerifier
	url      string
}

// Witness is a "witness" line of a policy.
type Witness struct {
	// Name is the witness's name in the policy, which groups refer to; not
	// necessarily its key's name.
	Name     string
	Verifier *torchwood.CosignatureVerifier
	// URL is the rest of the line after the key: its optional URL (the
	// witness's tlog-witness submission prefix), as written; "" if the line
	// has none. torchwood ignores it.
	URL string
}

// Logs returns the policy's log keys, in order.
func (p *Policy) Logs() []note.Verifier { return append([]note.Verifier(nil), p.logs...) }

// Witnesses returns the policy's witnesses, in order.
func (p *Policy) Witnesses() []Witness {
	out := make([]Witness, len(p.witnesses))
	for i, w := range p.witnesses {
		out[i] = Witness{Name: w.name, Verifier: w.verifier, URL: w.url}
	}
	return out
}

// policyComponent is a witness (witness >= 0, its index in
// Policy.witnesses) or a group (witness < 0).
type policyComponent struct {
	witness   int
	threshold int
	members   []string
}

// ParsePolicy parses tlog-policy text (c2sp.org/tlog-policy) as
// torchwood.ParsePolicy reads it:
//
//	log <vkey> [url]
//	witness <name> <vkey> [url]
//	group <name> <k|any|all> <member>...
//	quorum <name|none>
//
// Text after '#' is ignored and fields are separated by white space. Every
// "log" key must sign, and the checkpoint's origin must be each log key's
// name. Witness and group names share one namespace, and a group's members
// must be defined on earlier lines. ParsePolicy accepts exactly what
// torchwood.ParsePolicy accepts, except lines of white space other than
// spaces and tabs, on which torchwood v0.9.0 panics. Errors wrap
// [ErrMalformedPolicy] and quote line numbers, not the policy's text.
func ParsePolicy(text []byte) (*Policy, error) {
	if len(text) > MaxPolicySize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformedPolicy, MaxPolicySize)
	}
	p, err := parseStructure(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedPolicy, err)
	}
	if p.tw, err = torchwood.ParsePolicy(text); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedPolicy, err)
	}
	return p, nil
}

// Torchwood returns torchwood's policy, for torchwood.VerifyCheckpoint and
// torchwood.VerifyProof.
func (p *Policy) Torchwood() torchwood.Policy { return p.tw }

// parseStructure reads the lines of a policy into a Policy without its
// torchwood policy. It refuses what torchwood.ParsePolicy refuses, with the
// same line splitting, plus the lines torchwood panics on.
func parseStructure(text []byte) (*Policy, error) {
	p := &Policy{byName: make(map[string]policyComponent)}
	quorum := ""
	for i, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if strings.Trim(line, " \t") == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			return nil, fmt.Errorf("line %d: white space other than spaces and tabs", i+1)
		}
		switch fields[0] {
		case "log":
			if len(fields) < 2 {
				return nil, fmt.Errorf("line %d: want \"log <vkey> [url]\"", i+1)
			}
			v, err := note.NewVerifier(fields[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: invalid log key: %v", i+1, err)
			}
			p.logs = append(p.logs, v)
		case "witness":
			if len(fields) < 3 {
				return nil, fmt.Errorf("line %d: want \"witness <name> <vkey> [url]\"", i+1)
			}
			name := fields[1]
			if _, ok := p.byName[name]; ok {
				return nil, fmt.Errorf("line %d: %q is defined twice", i+1, name)
			}
			v, err := torchwood.NewCosignatureVerifier(fields[2])
			if err != nil {
				return nil, fmt.Errorf("line %d: invalid witness key: %v", i+1, err)
			}
			p.byName[name] = policyComponent{witness: len(p.witnesses)}
			w := policyWitness{name: name, verifier: v}
			w.url = strings.Join(fields[3:], " ")
			p.witnesses = append(p.witnesses, w)
		case "group":
			if len(fields) < 4 {
				return nil, fmt.Errorf("line %d: want \"group <name> <k|any|all> <member>...\"", i+1)
			}
			name, k, members := fields[1], fields[2], fields[3:]
			if _, ok := p.byName[name]; ok {
				return nil, fmt.Errorf("line %d: %q is defined twice", i+1, name)
			}
			var n int
			switch k {
			case "any":
				n = 1
			case "all":
				n = len(members)
			default:
				var err error
				n, err = strconv.Atoi(k)
				if err != nil || n < 1 || n > len(members) {
					return nil, fmt.Errorf("line %d: group threshold must be any, all or 1 to %d", i+1, len(members))
				}
			}
			for _, m := range members {
				if _, ok := p.byName[m]; !ok {
					return nil, fmt.Errorf("line %d: group %q has member %q, not defined on an earlier line", i+1, name, m)
				}
			}
			p.byName[name] = policyComponent{witness: -1, threshold: n, members: members}
		case "quorum":
			if len(fields) < 2 {
				return nil, fmt.Errorf("line %d: want \"quorum <name|none>\"", i+1)
			}
			if quorum != "" {
				return nil, fmt.Errorf("line %d: second quorum line", i+1)
			}
			quorum = fields[1]
		default:
			return nil, fmt.Errorf("line %d: unknown keyword", i+1)
		}
	}
	switch quorum {
	case "":
		return nil, errors.New("no quorum line")
	case "none":
	default:
		if _, ok := p.byName[quorum]; !ok {
			return nil, fmt.Errorf("quorum %q is not defined", quorum)
		}
		p.quorum = quorum
	}
	return p, nil
}
