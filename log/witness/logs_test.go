package witness

import (
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// Fixed keys, so that the fuzz seeds are stable.
const (
	logVKeyA  = "vitalproof.example/log+e2406631+AdLtV55JwCGJmyPJfm5FF8JBoBOgN1Cw3y5oRK0rqFrt"
	logVKeyA2 = "vitalproof.example/log+062b367d+AWPE1wc2bJC2rK/kDr0o2kkkhMmjv06Is6ZofW0w+5uQ"
	witVKey   = "hospital1.example/witness+c19e514d+BLR9yhlYOuLRMTak0mhmwanywT+J/tUCpb4mHAeREjvG"
)

func vkeys(t testing.TB) (a, a2, b, wit string) {
	t.Helper()
	gen := func(name string) string {
		_, v, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	_, wit, err := GenerateKey("hospital1.example/witness")
	if err != nil {
		t.Fatal(err)
	}
	return gen("vitalproof.example/log"), gen("vitalproof.example/log"), gen("other.example/log"), wit
}

func TestParseLogs(t *testing.T) {
	t.Parallel()
	a, a2, b, wit := vkeys(t)
	type want struct {
		origin string
		keys   int
		url    string
	}
	tests := []struct {
		name    string
		text    string
		want    []want
		wantErr string
	}{
		{"one log", "log " + a + "\n", []want{{"vitalproof.example/log", 1, ""}}, ""},
		{"url, comments, blanks, no final newline",
			"# trusted logs\n\n  log " + a + " https://ledger.example/  # the ledger\n",
			[]want{{"vitalproof.example/log", 1, "https://ledger.example/"}}, ""},
		{"key rotation", "log " + a + "\nlog " + a2 + " https://ledger.example\n",
			[]want{{"vitalproof.example/log", 2, "https://ledger.example"}}, ""},
		{"two logs in file order", "log " + b + "\nlog " + a + "\n",
			[]want{{"other.example/log", 1, ""}, {"vitalproof.example/log", 1, ""}}, ""},
		{"a whole policy file", "log " + a + "\nwitness H1 " + wit + " https://h1.example\ngroup hospitals 1 H1\nquorum hospitals\n",
			[]want{{"vitalproof.example/log", 1, ""}}, ""},
		{"empty", "", nil, "lists no log"},
		{"vertical tab in a policy file", "log " + a + "\n\v\nwitness H1 " + wit + " https://h1.example\nquorum H1\n", nil, "white space"},
		{"only witnesses", "witness H1 " + wit + "\nquorum H1\n", nil, "lists no log"},
		{"bad policy lines", "log " + a + "\nwitness H1 " + wit + "\nquorum nobody\n", nil, "tlog-policy"},
		{"policy without quorum", "log " + a + "\nwitness H1 " + wit + "\n", nil, "tlog-policy"},
		{"unknown keyword", "log " + a + "\nlogs " + b + "\n", nil, "line 2: unknown keyword"},
		{"missing vkey", "log\n", nil, "line 1"},
		{"too many fields", "log " + a + " https://a.example extra\n", nil, "line 1"},
		{"bad vkey", "log " + a[:len(a)-3] + "\n", nil, "line 1: couldn't parse log vkey"},
		{"cosignature key as log key", "log " + wit + "\n", nil, "line 1: couldn't parse log vkey"},
		{"relative url", "log " + a + " ledger.example\n", nil, "not an absolute URL"},
		{"duplicate key", "log " + a + "\n\nlog " + a + "\n", nil, "line 3: key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, err := ParseLogs([]byte(tt.text))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) != len(tt.want) {
				t.Fatalf("got %d logs, want %d", len(logs), len(tt.want))
			}
			for i, w := range tt.want {
				l := logs[i]
				if l.Origin != w.origin || len(l.Keys) != w.keys || l.URL != w.url {
					t.Errorf("log %d: got %q with %d keys and URL %q, want %+v", i, l.Origin, len(l.Keys), l.URL, w)
				}
			}
		})
	}
}

func TestParseLogsTooLarge(t *testing.T) {
	t.Parallel()
	if _, err := ParseLogs(make([]byte, maxLogsFile+1)); err == nil {
		t.Error("accepted a file over the limit")
	}
}

// FuzzParseLogs checks that ParseLogs never panics and that what it returns
// is coherent: each log has keys named after its origin.
func FuzzParseLogs(f *testing.F) {
	for _, s := range []string{
		"log " + logVKeyA + "\n",
		"log " + logVKeyA + " https://ledger.example\nlog " + logVKeyA2 + "\n",
		"# comment\nlog " + logVKeyA + "\nwitness H1 " + witVKey + " https://h1.example\nquorum H1\n",
		"log\n", "quorum none\n", "group g 1 a\n", "log x+1+AQ==\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		logs, err := ParseLogs(text)
		if err != nil {
			if logs != nil {
				t.Fatal("logs and an error")
			}
			return
		}
		if len(logs) == 0 {
			t.Fatal("no log and no error")
		}
		seen := map[string]bool{}
		for _, l := range logs {
			if seen[l.Origin] || len(l.Keys) == 0 {
				t.Fatalf("log %q repeated or without keys", l.Origin)
			}
			seen[l.Origin] = true
			for _, k := range l.Keys {
				if k.Name() != l.Origin {
					t.Fatalf("key %q under origin %q", k.Name(), l.Origin)
				}
			}
		}
	})
}
