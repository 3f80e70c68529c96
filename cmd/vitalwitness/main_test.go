package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vitalproof/vitalproof/internal/testdb"
	"github.com/vitalproof/vitalproof/log/witness"
)

func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{"vitalwitness": runMain}))
}

// TestScript runs testdata/*.txt. Each script gets $DSN, a database that
// does not exist yet (serve must create it), and $ADDR, a free local
// address.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			b := make([]byte, 6)
			rand.Read(b)
			name := "vptest_vitalwitness_" + hex.EncodeToString(b)
			dsn, err := testdb.DSN(name)
			if err != nil {
				return err
			}
			env.Setenv("DSN", dsn)
			env.Defer(func() { dropDatabase(env.T(), name) })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			env.Setenv("ADDR", ln.Addr().String())
			return ln.Close()
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfor":  cmdWaitfor,
			"filemode": cmdFilemode,
			"addcp":    cmdAddcp,
			"getcp":    cmdGetcp,
		},
	})
}

func dropDatabase(t testscript.T, name string) {
	server, err := testdb.DSN("")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", server)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
		t.Fatal(fmt.Sprintf("couldn't drop %s: %v", name, err))
	}
}

// waitfor ADDR waits until ADDR accepts TCP connections.
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: waitfor host:port")
	}
	var err error
	for range 100 {
		var c net.Conn
		if c, err = net.Dial("tcp", args[0]); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("%s does not answer: %v", args[0], err)
}

// filemode FILE MODE checks a file's permission bits (octal).
func cmdFilemode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := uint64(fi.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// addcp [-fork] URL LOGKEY WITNESSVKEY OLD SIZE sends the checkpoint of size
// SIZE of a log whose leaf i is "leaf i" ("fork leaf i" from 2 on with
// -fork), signed with the key in file LOGKEY, with a consistency proof from
// OLD, to the witness at URL with witness.Client. It prints "cosigned SIZE"
// once the cosignature verifies with the vkey in file WITNESSVKEY,
// "conflict N" on a 409 and "refused: <error>" otherwise.
func cmdAddcp(ts *testscript.TestScript, neg bool, args []string) {
	fork := len(args) > 0 && args[0] == "-fork"
	if fork {
		args = args[1:]
	}
	if len(args) != 5 || neg {
		ts.Fatalf("usage: addcp [-fork] URL LOGKEY WITNESSVKEY OLD SIZE")
	}
	old, err1 := strconv.Atoi(args[3])
	size, err2 := strconv.Atoi(args[4])
	if err1 != nil || err2 != nil {
		ts.Fatalf("OLD and SIZE must be numbers")
	}
	signer, err := note.NewSigner(strings.TrimSpace(ts.ReadFile(args[1])))
	ts.Check(err)
	wv, err := torchwood.NewCosignatureVerifier(strings.TrimSpace(ts.ReadFile(args[2])))
	ts.Check(err)

	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i := range size {
		leaf := fmt.Sprintf("leaf %d", i)
		if fork && i >= 2 {
			leaf = "fork " + leaf
		}
		hs, err := tlog.StoredHashes(int64(i), []byte(leaf), hr)
		ts.Check(err)
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(size), hr)
	ts.Check(err)
	text := torchwood.Checkpoint{Origin: signer.Name(), Tree: tlog.Tree{N: int64(size), Hash: root}}.String()
	cp, err := note.Sign(&note.Note{Text: text}, signer)
	ts.Check(err)
	var proof [][32]byte
	if old > 0 && old < size {
		p, err := tlog.ProveTree(int64(size), int64(old), hr)
		ts.Check(err)
		for _, h := range p {
			proof = append(proof, h)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lines, err := (&witness.Client{}).AddCheckpoint(ctx, args[0], uint64(old), proof, cp)
	var ce *witness.ConflictError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(ts.Stdout(), "conflict %d\n", ce.Size)
	case err != nil:
		fmt.Fprintf(ts.Stdout(), "refused: %v\n", err)
	default:
		n, err := note.Open(append(cp, lines...), note.VerifierList(wv))
		ts.Check(err)
		if len(n.Sigs) != 1 {
			ts.Fatalf("the answer has %d signatures by the witness", len(n.Sigs))
		}
		fmt.Fprintf(ts.Stdout(), "cosigned %d\n", size)
	}
}

// getcp URL ORIGIN prints the witness's monitoring checkpoint for ORIGIN.
func cmdGetcp(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: getcp URL ORIGIN")
	}
	resp, err := http.Get(args[0] + "/" + witness.OriginHash(args[1]) + "/checkpoint")
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	if (resp.StatusCode == http.StatusOK) == neg {
		ts.Fatalf("GET checkpoint: %s %q", resp.Status, b)
	}
	ts.Stdout().Write(b)
}
