// Package provenance is VitalProof's personality: the ledger (device
// registry, entry checks, append, receipts) and the hospital gateway
// (ingest, validation, private reading store).
package provenance

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the API layer, which maps each kind to one
// gRPC code and HTTP status.
type Kind int

const (
	// KindInternal: a failure of ours; the client sees a generic message.
	KindInternal Kind = iota
	// KindInvalid: the request is malformed or fails validation (400).
	KindInvalid
	// KindUnauthenticated: missing or unknown API key (401).
	KindUnauthenticated
	// KindPermission: the caller may not do this (403).
	KindPermission
	// KindNotFound: no such device, hospital, entry or receipt (404).
	KindNotFound
	// KindConflict: the request contradicts the state, e.g. an entry that is
	// not the next link of its device's chain (409).
	KindConflict
	// KindPending: accepted but not yet integrated; try again later.
	KindPending
	// KindUnavailable: a dependency is down; retrying may succeed (503).
	KindUnavailable
)

// Error is an error a client can act on. Field names the offending input
// field (may be empty) and Reason says what is wrong with it. Neither ever
// holds a reading, a salt or a patient identifier.
type Error struct {
	Kind   Kind
	Field  string
	Reason string
	// Err is the underlying cause, for logs; it is not shown to clients.
	Err error
}

func (e *Error) Error() string {
	msg := e.Reason
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil && e.Kind == KindInternal {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ClientMessage is the message safe to show a client.
func (e *Error) ClientMessage() string {
	if e.Kind == KindInternal {
		return "internal error"
	}
	if e.Field != "" {
		return e.Field + ": " + e.Reason
	}
	return e.Reason
}

// KindOf returns the kind of err: that of the first *Error in its chain, or KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func errorf(kind Kind, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func internal(what string, err error) *Error {
	return &Error{Kind: KindInternal, Reason: "couldn't " + what, Err: err}
}
