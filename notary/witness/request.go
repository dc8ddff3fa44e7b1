package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"
)

// Limits on an add-checkpoint request.
const (
	// MaxRequestSize bounds an add-checkpoint request body.
	MaxRequestSize = 64 << 10
	// MaxProofLines is the most consistency proof lines a request may
	// carry (c2sp.org/tlog-witness).
	MaxProofLines = 63
)

// Request is a parsed add-checkpoint request body (c2sp.org/tlog-witness):
//
//	old <size>\n
//	<base64 hash>\n   (0 to 63 consistency proof lines)
//	\n
//	<signed checkpoint note>
type Request struct {
	OldSize uint64
	Proof   []tlog.Hash
	// Checkpoint is the signed note, unverified.
	Checkpoint []byte
}

// ErrMalformed is wrapped by every error of [ParseRequest].
var ErrMalformed = errors.New("malformed request")

// ParseRequest parses an add-checkpoint request body. It checks the form
// of every line, not the checkpoint's signatures or the proof.
func ParseRequest(body []byte) (Request, error) {
	if len(body) > MaxRequestSize {
		return Request{}, fmt.Errorf("%w: body is %d bytes, more than %d", ErrMalformed, len(body), MaxRequestSize)
	}
	head, note, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return Request{}, fmt.Errorf("%w: no empty line between the proof and the checkpoint", ErrMalformed)
	}
	lines := bytes.Split(head, []byte("\n"))
	size, ok := bytes.CutPrefix(lines[0], []byte("old "))
	if !ok {
		return Request{}, fmt.Errorf("%w: the first line must be \"old <size>\"", ErrMalformed)
	}
	old, err := strconv.ParseUint(string(size), 10, 63)
	if err != nil || strconv.FormatUint(old, 10) != string(size) {
		return Request{}, fmt.Errorf("%w: old size %q is not a decimal without leading zeroes", ErrMalformed, size)
	}
	proofLines := lines[1:]
	if len(proofLines) > MaxProofLines {
		return Request{}, fmt.Errorf("%w: %d consistency proof lines, more than %d", ErrMalformed, len(proofLines), MaxProofLines)
	}
	proof := make([]tlog.Hash, len(proofLines))
	for i, line := range proofLines {
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != tlog.HashSize || len(line) != base64.StdEncoding.EncodedLen(tlog.HashSize) {
			return Request{}, fmt.Errorf("%w: consistency proof line %d is not a base64 SHA-256 hash", ErrMalformed, i+1)
		}
		proof[i] = tlog.Hash(h)
	}
	if len(note) == 0 {
		return Request{}, fmt.Errorf("%w: no checkpoint after the empty line", ErrMalformed)
	}
	return Request{OldSize: old, Proof: proof, Checkpoint: note}, nil
}

// Marshal returns the request body: the inverse of [ParseRequest].
func (r Request) Marshal() []byte {
	b := make([]byte, 0, 24+len(r.Proof)*45+len(r.Checkpoint))
	b = strconv.AppendUint(append(b, "old "...), r.OldSize, 10)
	b = append(b, '\n')
	for _, h := range r.Proof {
		b = append(base64.StdEncoding.AppendEncode(b, h[:]), '\n')
	}
	b = append(b, '\n')
	return append(b, r.Checkpoint...)
}
