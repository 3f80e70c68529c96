package publish

import (
	"strings"
	"testing"

	"filippo.io/torchwood"

	"github.com/vitalproof/vitalproof/log/witness"
)

func witnessKey(t testing.TB, name string) string {
	t.Helper()
	_, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func TestParsePolicy(t *testing.T) {
	s := newSigner(t)
	k1, k2, k3 := witnessKey(t, "w1.example/w"), witnessKey(t, "w2.example/w"), witnessKey(t, "w3.example/w")
	logLine := "log " + s.VerifierKey() + " https://log.example/\n"

	p, err := parsePolicy([]byte(logLine +
		"# hospitals\n" +
		"witness H1 " + k1 + " https://w1.example/prefix  # comment\n" +
		"\twitness   H2 " + k2 + "\thttp://127.0.0.1:8080\n" +
		"witness H3 " + k3 + " https://w3.example/a/b/\n" +
		"group g 2 H1 H2 H3\n" +
		"quorum g\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.logs) != 1 || p.logs[0].Name() != s.Origin() || p.logs[0].KeyHash() != s.Verifier().KeyHash() {
		t.Errorf("logs = %v", p.logs)
	}
	want := []struct{ name, vkey, url string }{
		{"H1", k1, "https://w1.example/prefix"},
		{"H2", k2, "http://127.0.0.1:8080"},
		{"H3", k3, "https://w3.example/a/b/"},
	}
	if len(p.witnesses) != len(want) {
		t.Fatalf("%d witnesses, want %d", len(p.witnesses), len(want))
	}
	for i, w := range want {
		got := p.witnesses[i]
		if got.name != w.name || got.verifier.String() != w.vkey || got.url != w.url {
			t.Errorf("witness %d = %q %q %q, want %q %q %q", i, got.name, got.verifier, got.url, w.name, w.vkey, w.url)
		}
	}

	for _, tc := range []struct {
		name, text, want string
	}{
		{"torchwood refuses", logLine + "quorum nobody\n", "couldn't parse policy"},
		{"log without key", "log\nquorum none\n", "want"},
		{"unknown keyword", logLine + "witnesses H1 " + k1 + " https://w1.example/\nquorum none\n", "couldn't parse policy"},
		{"no URL", logLine + "witness H1 " + k1 + "\nquorum H1\n", "want"},
		{"extra field", logLine + "witness H1 " + k1 + " https://w1.example/ x\nquorum H1\n", "want"},
		{"relative URL", logLine + "witness H1 " + k1 + " /add-checkpoint\nquorum H1\n", "witness URL"},
		{"no host", logLine + "witness H1 " + k1 + " https:///x\nquorum H1\n", "witness URL"},
		{"query", logLine + "witness H1 " + k1 + " https://w1.example/?a=b\nquorum H1\n", "witness URL"},
		{"other white space", logLine + "\v\nquorum none\n", "white space"},
		{"credentials", logLine + "witness H1 " + k1 + " https://u:p@w1.example/\nquorum H1\n", "witness URL"},
		{"ftp", logLine + "witness H1 " + k1 + " ftp://w1.example/\nquorum H1\n", "witness URL"},
		{"same key twice", logLine + "witness H1 " + k1 + " https://a.example/\nwitness H2 " + k1 + " https://b.example/\nquorum none\n", "listed twice"},
		{"too large", logLine + strings.Repeat("#\n", maxPolicySize) + "quorum none\n", "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy([]byte(tc.text))
			if err == nil {
				t.Fatal("parsePolicy succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), k1[len(k1)-20:]) && tc.want == "witness URL" {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

// FuzzParsePolicy: whatever parsePolicy accepts torchwood accepts too, each
// witness has a distinct key and a canonical http(s) URL.
func FuzzParsePolicy(f *testing.F) {
	s := newSigner(f)
	k1, k2 := witnessKey(f, "w1.example/w"), witnessKey(f, "w2.example/w")
	logLine := "log " + s.VerifierKey() + "\n"
	f.Add([]byte(logLine + "quorum none\n"))
	f.Add([]byte(logLine + "witness H1 " + k1 + " https://w1.example/\nwitness H2 " + k2 + " http://[::1]:80/x\ngroup g any H1 H2\nquorum g\n"))
	f.Add([]byte(logLine + "witness H1 " + k1 + " https://w1.example/ # c\ngroup a all H1\ngroup b 1 a\nquorum b\n"))
	f.Add([]byte(logLine + "witness H1 " + k1 + "\nquorum H1\n"))
	f.Add([]byte("quorum none\n"))
	f.Add([]byte("witness\n"))
	f.Add([]byte("\v"))
	f.Fuzz(func(t *testing.T, text []byte) {
		p, err := parsePolicy(text)
		if err != nil {
			return
		}
		if _, err := torchwood.ParsePolicy(text); err != nil {
			t.Fatalf("parsePolicy accepted what torchwood refuses: %v", err)
		}
		keys := make(map[string]bool)
		for _, w := range p.witnesses {
			k := w.verifier.String()
			if keys[k] {
				t.Fatalf("key %s listed twice", k)
			}
			keys[k] = true
			u, err := parseWitnessURL(w.url)
			if err != nil || u != w.url {
				t.Fatalf("witness URL %q is not canonical: %q, %v", w.url, u, err)
			}
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				t.Fatalf("witness URL %q", u)
			}
		}
	})
}
