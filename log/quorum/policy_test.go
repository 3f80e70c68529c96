package quorum

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/torchwood"
)

// Fixed keys, so that fuzz seeds stay valid.
const (
	testLogVkey = "vitalproof.example/ledger+672515ec+AcHYfi5DP2a45nT0YvrUQ6GjE2tUalKgcANnTt2pLWWh"
	testW1Vkey  = "w1.example/witness+31fc2b85+BOvoC3yt6id6wF+4XHFk/hXr1oc8SnSzKWpGKhAm/ZsP"
	testW2Vkey  = "w2.example/witness+bed0387a+BFDEpYca0zefKHnRLO91DRIRYzKDqcNzAjjm3fCE20yK"
)

func TestParsePolicy(t *testing.T) {
	policy := "# consortium policy\n" +
		"log " + testLogVkey + " https://ledger.example # the ledger\n" +
		"\t \n" +
		"witness W1 " + testW1Vkey + " https://w1.example/witness\n" +
		"witness  W2\t" + testW2Vkey + "\n" + // no URL, tabs: torchwood accepts both
		"group any1 any W1 W2\n" +
		"group all2 all W1 W2\n" +
		"group top 1 any1 all2 W1\n" +
		"quorum top # comment\n"
	p, err := ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.logs) != 1 || p.logs[0].Name() != "vitalproof.example/ledger" {
		t.Errorf("logs = %v", p.logs)
	}
	if len(p.witnesses) != 2 || p.witnesses[0].name != "W1" || p.witnesses[1].name != "W2" ||
		p.witnesses[1].verifier.String() != testW2Vkey {
		t.Errorf("witnesses = %+v", p.witnesses)
	}
	for name, want := range map[string]policyComponent{
		"W1":   {witness: 0},
		"W2":   {witness: 1},
		"any1": {witness: -1, threshold: 1, members: []string{"W1", "W2"}},
		"all2": {witness: -1, threshold: 2, members: []string{"W1", "W2"}},
		"top":  {witness: -1, threshold: 1, members: []string{"any1", "all2", "W1"}},
	} {
		if got := p.byName[name]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	if p.quorum != "top" || p.Torchwood() == nil {
		t.Errorf("quorum = %q, torchwood policy %v", p.quorum, p.Torchwood())
	}
	p, err = ParsePolicy([]byte("log " + testLogVkey + "\ngroup none any\u00a0x\nquorum none\n"))
	if err == nil {
		t.Errorf("group of an undefined member (after a no-break space) parsed: %+v", p)
	}
	if p, err := ParsePolicy([]byte("log " + testLogVkey + "\nquorum none\n")); err != nil || p.quorum != "" {
		t.Errorf("quorum none: %+v, %v", p, err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	w := "witness W1 " + testW1Vkey + "\n"
	for _, tc := range []struct {
		name, policy, want string
	}{
		{"empty", "", "no quorum line"},
		{"log without key", "log\nquorum none\n", "line 1: want"},
		{"bad log key", "log x\nquorum none\n", "line 1: invalid log key"},
		{"witness without key", "witness W1\nquorum none\n", "line 1: want"},
		{"bad witness key", "witness W1 " + testLogVkey + "\nquorum none\n", "line 1: invalid witness key"},
		{"witness twice", w + w + "quorum none\n", `line 2: "W1" is defined twice`},
		{"group named like a witness", w + "group W1 1 W1\nquorum none\n", `line 2: "W1" is defined twice`},
		{"group without members", w + "group g 1\nquorum none\n", "line 2: want"},
		{"group threshold", w + "group g 2 W1\nquorum none\n", "line 2: group threshold must be any, all or 1 to 1"},
		{"group threshold word", w + "group g some W1\nquorum none\n", "line 2: group threshold"},
		{"member defined later", "group g 1 W1\n" + w + "quorum none\n", `line 1: group "g" has member "W1", not defined on an earlier line`},
		{"quorum without name", "quorum\n", "line 1: want"},
		{"two quorums", "quorum none\nquorum none\n", "line 2: second quorum line"},
		{"undefined quorum", "quorum g\n", `quorum "g" is not defined`},
		{"unknown keyword", "quorum none\nwitnesses\n", "line 2: unknown keyword"},
		{"form feed", "quorum none\n\f\n", "line 2: white space other than spaces and tabs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.policy))
			if !errors.Is(err, ErrMalformedPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePolicy = %+v, %v; want an error with %q", p, err, tc.want)
			}
		})
	}
}

// FuzzParsePolicy checks that ParsePolicy never panics, accepts exactly
// what torchwood.ParsePolicy accepts without panicking, and reads a
// structure whose names all resolve.
func FuzzParsePolicy(f *testing.F) {
	w1, w2 := "witness W1 "+testW1Vkey+" https://w1.example\n", "witness W2 "+testW2Vkey+"\n"
	for _, s := range []string{
		"log " + testLogVkey + "\nquorum none\n",
		"log " + testLogVkey + " https://l.example\n" + w1 + w2 + "group g 2 W1 W2\nquorum g\n",
		"log " + testLogVkey + "\n" + w1 + w2 + "group a any W1\ngroup b all W2 W1\ngroup q 1 a b\nquorum q # c\n",
		w1 + "quorum W1\n",
		"# only a comment\n\t\n",
		"log " + testLogVkey + "\r\n\r\nquorum none\r\n",
		"group g 01 W1\n",
		"quorum none\n\v\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		p, err := ParsePolicy(text)
		if len(text) <= MaxPolicySize {
			twOK := func() (ok bool) {
				defer func() {
					if recover() != nil {
						ok = false
					}
				}()
				_, err := torchwood.ParsePolicy(text)
				return err == nil
			}()
			if twOK != (err == nil) {
				t.Fatalf("ParsePolicy error = %v, torchwood accepts: %v", err, twOK)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedPolicy) {
				t.Fatalf("error does not wrap ErrMalformedPolicy: %v", err)
			}
			return
		}
		if _, ok := p.byName[p.quorum]; p.quorum != "" && !ok {
			t.Fatalf("quorum %q undefined", p.quorum)
		}
		for name, c := range p.byName {
			if c.witness >= 0 {
				if c.witness >= len(p.witnesses) || p.witnesses[c.witness].name != name {
					t.Fatalf("witness %q points to %d", name, c.witness)
				}
				continue
			}
			if c.threshold < 1 || c.threshold > len(c.members) {
				t.Fatalf("group %q: threshold %d of %d", name, c.threshold, len(c.members))
			}
			for _, m := range c.members {
				if _, ok := p.byName[m]; !ok {
					t.Fatalf("group %q: member %q undefined", name, m)
				}
			}
		}
	})
}
