package witness

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// Log is a log the witness cosigns for.
type Log struct {
	// Origin is the log's checkpoint origin line. Each of its keys has
	// this name, as c2sp.org/tlog-checkpoint recommends and tlog-policy
	// requires.
	Origin string
	// Keys verify the log's checkpoint signatures (Ed25519 signed-note
	// keys). More than one lets a log rotate its key.
	Keys []note.Verifier
	// URL is the log's URL if the file gives one. The witness does not use
	// it; it is there for operators.
	URL string
}

// maxLogsFile bounds the trusted-logs file ParseLogs accepts.
const maxLogsFile = 1 << 20

// ParseLogs parses the witness's trusted-logs file: tlog-policy text
// (c2sp.org/tlog-policy, as torchwood.ParsePolicy reads it) of which the
// witness uses the log lines,
//
//	log <vkey> [url]
//
// one per log key; a log is identified by its key's name, which is its
// checkpoint origin, and may be listed with several keys. Blank lines and
// text after '#' are ignored. So that a consortium's whole policy file can be
// used as is, witness, group and quorum lines are accepted too, and the file
// must then be a valid policy for torchwood.ParsePolicy; they do not change
// what the witness cosigns.
//
// torchwood.ParsePolicy itself does not fit this purpose: it requires a
// quorum line and returns an opaque policy that requires every listed log to
// sign, without a way to list the logs.
//
// The result is in file order of first appearance, with at least one log.
func ParseLogs(text []byte) ([]Log, error) {
	if len(text) > maxLogsFile {
		return nil, fmt.Errorf("logs file is larger than %d bytes", maxLogsFile)
	}
	var logs []Log
	index := make(map[string]int)
	policy := false
	for i, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			// torchwood v0.9.0's ParsePolicy skips only lines of spaces and
			// tabs, and panics on a line of other white space.
			if strings.Trim(line, " \t") != "" {
				return nil, fmt.Errorf("line %d: white space other than spaces and tabs", i+1)
			}
			continue
		}
		switch fields[0] {
		case "log":
			if len(fields) != 2 && len(fields) != 3 {
				return nil, fmt.Errorf("line %d: want \"log <vkey> [url]\"", i+1)
			}
			v, err := note.NewVerifier(fields[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: couldn't parse log vkey: %w", i+1, err)
			}
			var u string
			if len(fields) == 3 {
				pu, err := url.Parse(fields[2])
				if err != nil || !pu.IsAbs() || pu.Host == "" {
					return nil, fmt.Errorf("line %d: log URL is not an absolute URL", i+1)
				}
				u = fields[2]
			}
			origin := v.Name()
			j, ok := index[origin]
			if !ok {
				j = len(logs)
				index[origin] = j
				logs = append(logs, Log{Origin: origin})
			}
			l := &logs[j]
			if slices.ContainsFunc(l.Keys, func(k note.Verifier) bool { return k.KeyHash() == v.KeyHash() }) {
				return nil, fmt.Errorf("line %d: key %s+%08x is listed twice", i+1, origin, v.KeyHash())
			}
			l.Keys = append(l.Keys, v)
			if l.URL == "" {
				l.URL = u
			}
		case "witness", "group", "quorum":
			policy = true
		default:
			return nil, fmt.Errorf("line %d: unknown keyword (want log, witness, group or quorum)", i+1)
		}
	}
	if len(logs) == 0 {
		return nil, errors.New("logs file lists no log (want \"log <vkey> [url]\" lines)")
	}
	if policy {
		if _, err := torchwood.ParsePolicy(text); err != nil {
			return nil, fmt.Errorf("couldn't parse logs file as a tlog-policy: %w", err)
		}
	}
	return logs, nil
}
