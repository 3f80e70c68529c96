package quorum

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const origin = "vitalproof.example/ledger"

// fixture holds the keys of a log and its witnesses and signs checkpoints
// with them.
type fixture struct {
	log          note.Signer
	logVkey      string
	otherLog     note.Signer // another key with the log's name
	otherLogVkey string
	// witnesses by policy name; the key of W is named "w.example/witness"
	// in lower case.
	witnesses map[string]*torchwood.CosignatureSigner
	// impostors by policy name: other keys with the same key names.
	impostors map[string]*torchwood.CosignatureSigner
	unknown   note.Signer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{witnesses: map[string]*torchwood.CosignatureSigner{}, impostors: map[string]*torchwood.CosignatureSigner{}}
	var skey string
	var err error
	skey, f.logVkey, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	if f.log, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	f.otherLog, f.otherLogVkey = newNoteSigner(t, origin)
	f.unknown, _ = newNoteSigner(t, "stranger.example/log")
	for _, name := range []string{"H1", "H2", "H3", "W1", "W2", "W3", "W4", "W5"} {
		keyName := strings.ToLower(name) + ".example/witness"
		f.witnesses[name] = newCosigner(t, keyName)
		f.impostors[name] = newCosigner(t, keyName)
	}
	return f
}

func newNoteSigner(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

func newCosigner(t testing.TB, name string) *torchwood.CosignatureSigner {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := torchwood.NewCosignatureSigner(name, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// body returns the text of a checkpoint of origin o with tree size n.
func body(o string, n int64) string {
	var h tlog.Hash
	h[0] = byte(n)
	return torchwood.Checkpoint{Origin: o, Tree: tlog.Tree{N: n, Hash: h}}.String()
}

// sigLine returns the signature line of s on text.
func sigLine(t testing.TB, text string, s note.Signer) string {
	t.Helper()
	signed, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return string(signed[len(text)+1:])
}

// policy returns a policy with the log's key, the named witnesses and the
// other lines.
func (f *fixture) policy(witnesses []string, lines ...string) []byte {
	var b strings.Builder
	b.WriteString("# test policy\nlog " + f.logVkey + "\n")
	for _, w := range witnesses {
		fmt.Fprintf(&b, "witness %s %s https://%s.example/witness\n", w, f.witnesses[w].Verifier(), strings.ToLower(w))
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return []byte(b.String())
}

// note returns text signed as each spec says: "log" by the log's key,
// "otherlog" by another key of the log's name, "unknown" by a key the policy
// does not name, "W" a cosignature by witness W, "W!" one by W's key over
// another checkpoint (so it does not verify) and "W~" one by another key
// with W's key name.
func (f *fixture) note(t testing.TB, text string, specs ...string) []byte {
	t.Helper()
	out := text + "\n"
	for _, s := range specs {
		switch {
		case s == "log":
			out += sigLine(t, text, f.log)
		case s == "otherlog":
			out += sigLine(t, text, f.otherLog)
		case s == "unknown":
			out += sigLine(t, text, f.unknown)
		case strings.HasSuffix(s, "!"):
			out += sigLine(t, body(origin, 99), f.witnesses[strings.TrimSuffix(s, "!")])
		case strings.HasSuffix(s, "~"):
			out += sigLine(t, text, f.impostors[strings.TrimSuffix(s, "~")])
		default:
			w, ok := f.witnesses[s]
			if !ok {
				t.Fatalf("no witness %q", s)
			}
			out += sigLine(t, text, w)
		}
	}
	return []byte(out)
}

var hospitals = []string{"H1", "H2", "H3"}
var nested = []string{"group a 2 W1 W2 W3", "group b any W4 W5", "group q all a b", "quorum q"}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	cp := body(origin, 7)
	hosp := f.policy(hospitals, "group hospitals 2 H1 H2 H3", "quorum hospitals")
	ws := []string{"W1", "W2", "W3", "W4", "W5"}
	for _, tc := range []struct {
		name   string
		policy []byte
		note   []byte
		// want is Summary() when the checkpoint satisfies the policy,
		// Reason() when it does not.
		ok   bool
		want string
		// states are the witnesses' expected states, by policy name.
		states map[string]SigState
	}{
		{"no witnesses, quorum none", f.policy(nil, "quorum none"), f.note(t, cp, "log"),
			true, "signed by the log (quorum none)", nil},
		{"quorum none ignores cosignatures", f.policy(hospitals, "quorum none"), f.note(t, cp, "log", "H2"),
			true, "cosigned by H2 (quorum none)", map[string]SigState{"H1": Missing, "H2": Signed}},
		{"2 of 3 met", hosp, f.note(t, cp, "log", "H1", "H3"),
			true, "cosigned by H1, H3 (quorum 2 of 3 met)", map[string]SigState{"H1": Signed, "H2": Missing, "H3": Signed}},
		{"3 of 3 for 2 of 3", hosp, f.note(t, cp, "H3", "log", "H2", "H1"),
			true, "cosigned by H1, H2, H3 (quorum 2 of 3 met)", nil},
		{"1 of 3", hosp, f.note(t, cp, "log", "H1"),
			false, `quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by H1; missing H2 (no cosignature), H3 (no cosignature)`,
			map[string]SigState{"H1": Signed, "H2": Missing, "H3": Missing}},
		{"none of 3", hosp, f.note(t, cp, "log"),
			false, `quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by none; missing H1 (no cosignature), H2 (no cosignature), H3 (no cosignature)`, nil},
		{"an invalid cosignature", hosp, f.note(t, cp, "log", "H1", "H3!"),
			false, `the cosignature of witness H3 does not verify, and a bad signature by a key of the policy invalidates the checkpoint; ` +
				`quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by H1; missing H2 (no cosignature), H3 (cosignature does not verify)`,
			map[string]SigState{"H1": Signed, "H2": Missing, "H3": BadSignature}},
		{"an invalid cosignature beside a quorum", hosp, f.note(t, cp, "log", "H1", "H2", "H3!"),
			false, `the cosignature of witness H3 does not verify, and a bad signature by a key of the policy invalidates the checkpoint`,
			map[string]SigState{"H1": Signed, "H2": Signed, "H3": BadSignature}},
		{"an invalid cosignature outside the quorum is ignored", f.policy(hospitals, "group g 1 H1 H2", "quorum g"), f.note(t, cp, "log", "H3!", "H1"),
			true, "cosigned by H1 (quorum 1 of 2 met)", map[string]SigState{"H1": Signed, "H3": BadSignature}},
		{"unknown extra signatures ignored", hosp, f.note(t, cp, "unknown", "log", "W1", "H1", "W2!", "H2"),
			true, "cosigned by H1, H2 (quorum 2 of 3 met)", nil},
		{"cosignature by another key of the witness's name", hosp, f.note(t, cp, "log", "H1", "H2~"),
			false, fmt.Sprintf(`quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by H1; missing H2 (cosignature by another key of that name, key hash %08x), H3 (no cosignature)`, f.impostors["H2"].KeyHash()),
			map[string]SigState{"H2": OtherKey}},
		{"wrong log key", hosp, f.note(t, cp, "otherlog", "H1", "H2"),
			false, fmt.Sprintf(`the log's signature is by key %q+%08x, not the policy's %q+%08x`, origin, f.otherLog.KeyHash(), origin, f.log.KeyHash()), nil},
		{"missing log signature", hosp, f.note(t, cp, "H1", "H2"),
			false, fmt.Sprintf(`no signature by the log's key %q+%08x`, origin, f.log.KeyHash()), nil},
		{"no known signature at all", hosp, f.note(t, cp, "unknown"),
			false, fmt.Sprintf(`no signature by the log's key %q+%08x; quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by none; missing H1 (no cosignature), H2 (no cosignature), H3 (no cosignature)`, origin, f.log.KeyHash()), nil},
		{"wrong origin", hosp, f.note(t, body("other.example/ledger", 7), "log", "H1", "H2"),
			false, `origin "other.example/ledger" is not the log's name "vitalproof.example/ledger"`, nil},
		{"nested groups met", f.policy(ws, nested...), f.note(t, cp, "log", "W1", "W2", "W4"),
			true, "cosigned by W1, W2, W4 (quorum 2 of 2 met)", nil},
		{"nested group a short", f.policy(ws, nested...), f.note(t, cp, "log", "W1", "W4", "W5"),
			false, `quorum not met: group "q" needs 2 of a, b; met: b; missing a (needs 2 of W1, W2, W3; cosigned by W1; missing W2 (no cosignature), W3 (no cosignature))`, nil},
		{"nested group b short", f.policy(ws, nested...), f.note(t, cp, "log", "W1", "W2", "W3", "W5~"),
			false, fmt.Sprintf(`quorum not met: group "q" needs 2 of a, b; met: a; missing b (needs 1 of W4, W5; cosigned by none; missing W4 (no cosignature), W5 (cosignature by another key of that name, key hash %08x))`, f.impostors["W5"].KeyHash()), nil},
		{"nested both short", f.policy(ws, nested...), f.note(t, cp, "log", "W3"),
			false, `quorum not met: group "q" needs 2 of a, b; met: none; missing a (needs 2 of W1, W2, W3; cosigned by W3; missing W1 (no cosignature), W2 (no cosignature)), b (needs 1 of W4, W5; cosigned by none; missing W4 (no cosignature), W5 (no cosignature))`, nil},
		{"any met", f.policy(hospitals, "group g any H1 H2 H3", "quorum g"), f.note(t, cp, "log", "H2"),
			true, "cosigned by H2 (quorum 1 of 3 met)", nil},
		{"any not met", f.policy(hospitals, "group g any H1 H2 H3", "quorum g"), f.note(t, cp, "log"),
			false, `quorum not met: group "g" needs 1 of H1, H2, H3; cosigned by none; missing H1 (no cosignature), H2 (no cosignature), H3 (no cosignature)`, nil},
		{"all met", f.policy(hospitals, "group g all H1 H2 H3", "quorum g"), f.note(t, cp, "log", "H1", "H2", "H3"),
			true, "cosigned by H1, H2, H3 (quorum 3 of 3 met)", nil},
		{"all not met", f.policy(hospitals, "group g all H1 H2 H3", "quorum g"), f.note(t, cp, "log", "H1", "H2"),
			false, `quorum not met: group "g" needs 3 of H1, H2, H3; cosigned by H1, H2; missing H3 (no cosignature)`, nil},
		{"quorum of one witness met", f.policy(hospitals, "quorum H2"), f.note(t, cp, "log", "H2"),
			true, "cosigned by H2 (quorum H2 met)", nil},
		{"quorum of one witness not met", f.policy(hospitals, "quorum H2"), f.note(t, cp, "log", "H1"),
			false, `quorum not met: witness H2: no cosignature`, nil},
		{"witness in two groups", f.policy(hospitals, "group a any H1", "group b any H1 H2", "group q all a b", "quorum q"), f.note(t, cp, "log", "H1"),
			false, fmt.Sprintf(`the policy refuses the signature by "h1.example/witness"+%08x: multiple verifiers found for "h1.example/witness" (%08x)`, f.witnesses["H1"].KeyHash(), f.witnesses["H1"].KeyHash()), nil},
		{"policy without a log line", []byte("witness H1 " + f.witnesses["H1"].Verifier().String() + "\nquorum H1\n"), f.note(t, cp, "H1"),
			false, "the policy has no log line, so nothing checks the checkpoint's origin", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The fixtures mean what the test says they mean: torchwood
			// agrees on the verdict.
			pol, err := torchwood.ParsePolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := torchwood.VerifyCheckpoint(tc.note, pol); (err == nil) != tc.ok {
				t.Fatalf("torchwood.VerifyCheckpoint = %v, the test wants ok = %v", err, tc.ok)
			}

			r, err := Check(tc.policy, tc.note)
			if r == nil {
				t.Fatalf("Check = nil, %v", err)
			}
			if r.Satisfied != tc.ok {
				t.Errorf("Satisfied = %v, want %v", r.Satisfied, tc.ok)
			}
			if tc.ok {
				if err != nil {
					t.Errorf("Check error = %v", err)
				}
				if r.Summary() != tc.want {
					t.Errorf("Summary =\n%s\nwant\n%s", r.Summary(), tc.want)
				}
				if r.Reason() != "" || len(r.Problems) != 0 {
					t.Errorf("satisfied, but Reason = %q", r.Reason())
				}
			} else {
				if !errors.Is(err, ErrNotSatisfied) || errors.Is(err, ErrMalformedCheckpoint) || errors.Is(err, ErrMalformedPolicy) {
					t.Errorf("Check error = %v, want ErrNotSatisfied only", err)
				}
				if r.Reason() != tc.want {
					t.Errorf("Reason =\n%s\nwant\n%s", r.Reason(), tc.want)
				}
				if err != nil && err.Error() != ErrNotSatisfied.Error()+": "+tc.want {
					t.Errorf("error = %q", err)
				}
				if !strings.HasPrefix(r.Summary(), "not satisfied: ") {
					t.Errorf("Summary = %q", r.Summary())
				}
			}
			for name, want := range tc.states {
				if got := witness(t, r, name).State; got != want {
					t.Errorf("witness %s: State = %v, want %v", name, got, want)
				}
			}
			checkReport(t, r, tc.note)
		})
	}
}

// checkReport checks what every report must hold, whatever the case.
func checkReport(t *testing.T, r *Report, signed []byte) {
	t.Helper()
	c, err := torchwood.ParseCheckpoint(string(signed[:strings.LastIndex(string(signed), "\n\n")+1]))
	if err != nil {
		t.Fatal(err)
	}
	if r.Origin != c.Origin || r.Size != uint64(c.N) || r.RootHash != c.Hash {
		t.Errorf("report of %q %d %x, want %q %d %x", r.Origin, r.Size, r.RootHash, c.Origin, c.N, c.Hash)
	}
	for _, w := range r.Witnesses {
		if w.State == Signed {
			if d := time.Since(w.Time); d < -time.Minute || d > time.Minute {
				t.Errorf("witness %s: cosignature time %v is %v away from now", w.Name, w.Time, d)
			}
		} else if !w.Time.IsZero() {
			t.Errorf("witness %s: %v, but time %v", w.Name, w.State, w.Time)
		}
	}
	// The explanation never shows the note: no root hash, no signature.
	root := base64.StdEncoding.EncodeToString(c.Hash[:])
	if strings.Contains(r.Reason(), root) || strings.Contains(r.Reason(), "—") || strings.Contains(r.Reason(), "\n") {
		t.Errorf("Reason shows the note or spans lines: %q", r.Reason())
	}
	s := r.String()
	if !strings.Contains(s, root) || !strings.Contains(s, fmt.Sprintf("tree size %d", c.N)) {
		t.Errorf("String does not show the checkpoint:\n%s", s)
	}
	if r.Satisfied != strings.Contains(s, "policy satisfied: "+r.Summary()+"\n") {
		t.Errorf("String does not show the verdict:\n%s", s)
	}
	for _, p := range r.Problems {
		if !strings.Contains(s, "  - "+p+"\n") {
			t.Errorf("String does not show problem %q:\n%s", p, s)
		}
	}
}

func witness(t *testing.T, r *Report, name string) WitnessStatus {
	t.Helper()
	for _, w := range r.Witnesses {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no witness %s in the report", name)
	return WitnessStatus{}
}

// TestReportDetails checks the report's fields and its multi-line form on a
// nested policy.
func TestReportDetails(t *testing.T) {
	f := newFixture(t)
	policy := f.policy([]string{"W1", "W2", "W3", "W4", "W5", "H1"}, nested...)
	signed := f.note(t, body(origin, 7), "log", "W1", "W3!", "W5")
	r, err := Check(policy, signed)
	if !errors.Is(err, ErrNotSatisfied) {
		t.Fatalf("Check error = %v", err)
	}
	if noLog, _ := Check([]byte("witness W1 "+f.witnesses["W1"].Verifier().String()+"\nquorum W1\n"), signed); noLog.LogSigned || noLog.OriginOK {
		t.Errorf("policy without a log line: LogSigned %v, OriginOK %v", noLog.LogSigned, noLog.OriginOK)
	}
	if len(r.Logs) != 1 || r.Logs[0].KeyName != origin || r.Logs[0].KeyHash != f.log.KeyHash() || r.Logs[0].State != Signed || !r.LogSigned || !r.OriginOK {
		t.Errorf("log status = %+v, LogSigned %v, OriginOK %v", r.Logs, r.LogSigned, r.OriginOK)
	}
	if r.QuorumName != "q" || r.Quorum == nil || r.Quorum.Met || r.Quorum.Have() != 1 || r.Quorum.Threshold != 2 {
		t.Fatalf("quorum = %+v", r.Quorum)
	}
	a, b := r.Quorum.Members[0], r.Quorum.Members[1]
	if a.Name != "a" || a.Met || a.Have() != 1 || b.Name != "b" || !b.Met || b.Have() != 1 {
		t.Errorf("groups a = %+v, b = %+v", a, b)
	}
	if w := a.Members[0].Witness; w == nil || w != &r.Witnesses[0] || w.Name != "W1" {
		t.Errorf("a's first member does not point to witness W1: %+v", a.Members[0])
	}
	if h1 := witness(t, r, "H1"); h1.InQuorum || !witness(t, r, "W4").InQuorum {
		t.Errorf("InQuorum wrong: H1 %v, W4 %v", h1.InQuorum, witness(t, r, "W4").InQuorum)
	}
	if got, want := r.Cosigners(), []string{"W1", "W5"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Cosigners = %v, want %v", got, want)
	}
	s := r.String()
	for _, want := range []string{
		fmt.Sprintf("checkpoint %q, tree size 7, root hash ", origin),
		fmt.Sprintf("log key %q+%08x: signed\n", origin, f.log.KeyHash()),
		fmt.Sprintf("witness W1 (key \"w1.example/witness\"+%08x): cosigned at %s\n", f.witnesses["W1"].KeyHash(), witness(t, r, "W1").Time.Format(time.RFC3339)),
		fmt.Sprintf("witness W2 (key \"w2.example/witness\"+%08x): no cosignature\n", f.witnesses["W2"].KeyHash()),
		fmt.Sprintf("witness W3 (key \"w3.example/witness\"+%08x): cosignature does not verify\n", f.witnesses["W3"].KeyHash()),
		fmt.Sprintf("witness H1 (key \"h1.example/witness\"+%08x): no cosignature (not in the quorum)\n", f.witnesses["H1"].KeyHash()),
		"group \"a\" needs 2 of W1, W2, W3: not met, 1 more needed (met by W1)\n",
		"group \"b\" needs 1 of W4, W5: met by W5\n",
		"quorum group \"q\" needs 2 of a, b: not met, 1 more needed (met by b)\n",
		"policy NOT satisfied:\n  - the cosignature of witness W3 does not verify",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, `group "a"`) > strings.Index(s, `quorum group "q"`) {
		t.Errorf("String shows the quorum before its groups:\n%s", s)
	}
}

func TestCheckMalformed(t *testing.T) {
	f := newFixture(t)
	policy := f.policy(hospitals, "group hospitals 2 H1 H2 H3", "quorum hospitals")
	good := f.note(t, body(origin, 7), "log", "H1", "H2")
	for _, tc := range []struct {
		name   string
		policy []byte
		note   []byte
		want   error
	}{
		{"empty note", policy, nil, ErrMalformedCheckpoint},
		{"no signature", policy, []byte(body(origin, 7) + "\n"), ErrMalformedCheckpoint},
		{"not a checkpoint", policy, f.note(t, "hello\n", "log"), ErrMalformedCheckpoint},
		{"size with a leading zero", policy, f.note(t, strings.Replace(body(origin, 7), "\n7\n", "\n07\n", 1), "log"), ErrMalformedCheckpoint},
		{"control character", policy, []byte(strings.Replace(string(good), "\n7\n", "\n7\x01\n", 1)), ErrMalformedCheckpoint},
		{"bad signature base64", policy, []byte(strings.Replace(string(good), "— "+origin+" ", "— "+origin+" !", 1)), ErrMalformedCheckpoint},
		{"no quorum", f.policy(hospitals), good, ErrMalformedPolicy},
		{"two quorums", f.policy(hospitals, "quorum none", "quorum H1"), good, ErrMalformedPolicy},
		{"undefined quorum", f.policy(hospitals, "quorum nobody"), good, ErrMalformedPolicy},
		{"undefined member", f.policy(hospitals, "group g 1 H1 H4", "quorum g"), good, ErrMalformedPolicy},
		{"threshold too high", f.policy(hospitals, "group g 4 H1 H2 H3", "quorum g"), good, ErrMalformedPolicy},
		{"threshold zero", f.policy(hospitals, "group g 0 H1", "quorum g"), good, ErrMalformedPolicy},
		{"duplicate name", f.policy(hospitals, "group H1 1 H2", "quorum H1"), good, ErrMalformedPolicy},
		{"bad log key", []byte("log nonsense\nquorum none\n"), good, ErrMalformedPolicy},
		{"cosignature key as log key", []byte("log " + f.witnesses["H1"].Verifier().String() + "\nquorum none\n"), good, ErrMalformedPolicy},
		{"unknown keyword", append(f.policy(nil, "quorum none"), "logs x\n"...), good, ErrMalformedPolicy},
		{"vertical tab line", append(f.policy(nil, "quorum none"), "\v\n"...), good, ErrMalformedPolicy},
		{"CR line", []byte(strings.ReplaceAll(string(f.policy(nil, "", "quorum none")), "\n", "\r\n")), good, ErrMalformedPolicy},
		{"too large", append(f.policy(nil, "quorum none"), strings.Repeat("#", MaxPolicySize)...), good, ErrMalformedPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Check(tc.policy, tc.note)
			if r != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, %v; want nil, %v", r, err, tc.want)
			}
			for _, other := range []error{ErrMalformedPolicy, ErrMalformedCheckpoint, ErrNotSatisfied} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v also wraps %v", err, other)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
	// The same policy with LF line ends parses.
	if _, err := Check(f.policy(nil, "", "quorum none"), f.note(t, body(origin, 1), "log")); err != nil {
		t.Errorf("LF policy: %v", err)
	}
}

// FuzzCheck checks the explanation against torchwood's verdict: for any
// policy over a fixed set of keys and any set of good, bad, foreign and
// impostor signatures, the report lists problems exactly when torchwood
// refuses the checkpoint, so Check never falls back on torchwood's error.
//
// The policy is a template: $L is the log's key, $M another key of the
// log's name, $1 to $5 the keys of witnesses W1 to W5 and $6 an impostor's
// key named like W2's. The bits of sigs pick signature lines: 0 log, 1 other
// log key, 2 unknown key, 3-7 W1-W5, 8 W3 over another checkpoint, 9 W2's
// impostor, 10 W1 over another checkpoint (after W1's good one), 11 W4 over
// another checkpoint; bit 12 signs a checkpoint of another origin, bit 13
// reverses the lines.
func FuzzCheck(fz *testing.F) {
	f := newFixture(fz)
	vkeys := strings.NewReplacer("$L", f.logVkey, "$M", f.otherLogVkey,
		"$1", f.witnesses["W1"].Verifier().String(), "$2", f.witnesses["W2"].Verifier().String(),
		"$3", f.witnesses["W3"].Verifier().String(), "$4", f.witnesses["W4"].Verifier().String(),
		"$5", f.witnesses["W5"].Verifier().String(), "$6", f.impostors["W2"].Verifier().String())
	specs := []string{"log", "otherlog", "unknown", "W1", "W2", "W3", "W4", "W5", "W3!", "W2~", "W1!", "W4!"}
	var lines [2][]string
	for i, text := range []string{body(origin, 7), body("other.example/ledger", 7)} {
		for _, s := range specs {
			n := f.note(fz, text, s)
			lines[i] = append(lines[i], string(n[len(text)+1:]))
		}
	}
	texts := []string{body(origin, 7), body("other.example/ledger", 7)}
	const witnesses = "witness W1 $1 https://w1.example\nwitness W2 $2\nwitness W3 $3 https://w3.example\nwitness W4 $4 x y\nwitness W5 $5\n"
	for _, tc := range []struct {
		policy string
		sigs   uint16
	}{
		{"log $L\nquorum none\n", 0b1},
		{"log $L\nquorum none\n", 0b10},
		{"log $L\n" + witnesses + "group a 2 W1 W2 W3\ngroup b any W4 W5\ngroup q all a b\nquorum q\n", 0b1011001},
		{"log $L\n" + witnesses + "group a 2 W1 W2 W3\ngroup b any W4 W5\ngroup q all a b\nquorum q\n", 0b101101001},
		{"log $L\n" + witnesses + "group h 2 W1 W2 W3\nquorum h\n", 0b10000101001},
		{"log $L\n" + witnesses + "group h 2 W1 W2 W3\nquorum h\n", 0b1001011001},
		{"log $L\n" + witnesses + "group h all W1 W2 W3 W4 W5\nquorum h\n", 0b11111101},
		{"log $L\nlog $M\n" + witnesses + "quorum W4\n", 0b100000010011},
		{"log $L\nwitness W2 $2\nwitness X $6\ngroup h any W2 X\nquorum h\n", 0b1000010001},
		{"log $L\nwitness W1 $1\nwitness W1b $1\ngroup h any W1 W1b\nquorum h\n", 0b1001},
		{"log $L\nwitness W1 $1\ngroup a any W1\ngroup h 2 a W1\nquorum h\n", 0b1001},
		{"log $L\nlog $L\nquorum none\n", 0b1},
		{"witness W1 $1\nquorum W1\n", 0b1001},
		{"log $L\n" + witnesses + "quorum none\n", 0b1000000000001 | 1<<13},
	} {
		fz.Add(tc.policy, tc.sigs)
	}
	fz.Fuzz(func(t *testing.T, template string, sigs uint16) {
		p, err := ParsePolicy([]byte(vkeys.Replace(template)))
		if err != nil {
			return
		}
		text := texts[sigs>>12&1]
		var sel []string
		for i, l := range lines[sigs>>12&1] {
			if sigs&(1<<i) != 0 {
				sel = append(sel, l)
			}
		}
		if sigs&(1<<13) != 0 {
			slices.Reverse(sel)
		}
		signed := []byte(text + "\n" + strings.Join(sel, ""))
		r, problems, err := p.analyze(signed)
		if len(sel) == 0 {
			if !errors.Is(err, ErrMalformedCheckpoint) {
				t.Fatalf("note without signatures: analyze error = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("analyze: %v", err)
		}
		_, _, verdict := torchwood.VerifyCheckpoint(signed, p.Torchwood())
		if (verdict == nil) != (len(problems) == 0) {
			t.Fatalf("torchwood says %v, the explanation says %q\n%s", verdict, problems, r)
		}
		r, err = p.Check(signed)
		if (err == nil) != (verdict == nil) || r == nil || r.Satisfied != (verdict == nil) ||
			(err != nil && !errors.Is(err, ErrNotSatisfied)) {
			t.Fatalf("Check = %v, %v; torchwood says %v", r, err, verdict)
		}
	})
}
