package notary

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Limits on checkpoints.
const (
	MaxOriginSize     = 255      // bytes in a log origin
	MaxCheckpointSize = 16 << 10 // bytes in a signed checkpoint note
)

// timestampPrefix starts the checkpoint's extension line.
const timestampPrefix = "timestamp "

// Checkpoint is a signed statement by the log: "the tree of my first Size
// leaves has root Root, as of Timestamp". Its body is a C2SP tlog-checkpoint
// with one extension line, "timestamp <milliseconds since the Unix epoch>".
type Checkpoint struct {
	Origin    string
	Size      uint64
	Root      Hash
	Timestamp int64 // milliseconds since the Unix epoch, UTC
}

// Time returns the checkpoint's timestamp as a UTC time.
func (c Checkpoint) Time() time.Time { return time.UnixMilli(c.Timestamp).UTC() }

// ValidateOrigin checks that origin can name a log: 1 to 255 bytes of
// printable UTF-8 without spaces or plus signs (C2SP tlog-checkpoint).
func ValidateOrigin(origin string) error {
	if origin == "" || len(origin) > MaxOriginSize {
		return fmt.Errorf("origin must be 1 to %d bytes, got %d", MaxOriginSize, len(origin))
	}
	if !utf8.ValidString(origin) {
		return errors.New("origin is not valid UTF-8")
	}
	for _, r := range origin {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '+' {
			return fmt.Errorf("origin contains %q; use printable characters without spaces or '+'", r)
		}
	}
	return nil
}

// Body returns the checkpoint's note text:
//
//	<origin>\n<size>\n<base64 root>\ntimestamp <ms>\n
func (c Checkpoint) Body() ([]byte, error) {
	if err := ValidateOrigin(c.Origin); err != nil {
		return nil, err
	}
	if c.Timestamp < 0 {
		return nil, fmt.Errorf("checkpoint timestamp %d is before 1970", c.Timestamp)
	}
	// The C2SP body (what log.Checkpoint.Marshal writes), built without fmt:
	// verifiers re-encode every body they parse.
	b := make([]byte, 0, len(c.Origin)+100)
	b = append(append(b, c.Origin...), '\n')
	b = append(strconv.AppendUint(b, c.Size, 10), '\n')
	b = append(base64.StdEncoding.AppendEncode(b, c.Root[:]), '\n')
	b = append(b, timestampPrefix...)
	b = strconv.AppendInt(b, c.Timestamp, 10)
	return append(b, '\n'), nil
}

// ParseCheckpointBody parses a checkpoint's note text, refusing any
// spelling other than the one [Checkpoint.Body] produces.
func ParseCheckpointBody(text []byte) (Checkpoint, error) {
	var lc log.Checkpoint
	rest, err := lc.Unmarshal(text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint: %w", ErrMalformed, err)
	}
	if len(lc.Hash) != HashSize {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint root is %d bytes, want %d", ErrMalformed, len(lc.Hash), HashSize)
	}
	line, ok := bytes.CutPrefix(rest, []byte(timestampPrefix))
	if !ok || len(line) == 0 || line[len(line)-1] != '\n' {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint lacks its %q line", ErrMalformed, strings.TrimSpace(timestampPrefix))
	}
	ts, err := strconv.ParseInt(string(line[:len(line)-1]), 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint timestamp: %w", ErrMalformed, err)
	}
	c := Checkpoint{Origin: lc.Origin, Size: lc.Size, Root: Hash(lc.Hash), Timestamp: ts}
	canon, err := c.Body()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint: %w", ErrMalformed, err)
	}
	if !bytes.Equal(canon, text) {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint is not in canonical form", ErrMalformed)
	}
	return c, nil
}

// SignedCheckpoint is a checkpoint with the signed note that carries it.
type SignedCheckpoint struct {
	Checkpoint
	// Note is the C2SP signed note: the body, a blank line, signature lines.
	Note []byte
	// Signers names the trusted keys whose signatures verified, when the
	// checkpoint was opened under a [Policy]; nil otherwise.
	Signers []string
}

// Sign signs the checkpoint with one or more Ed25519 note signers.
func (c Checkpoint) Sign(signers ...note.Signer) (SignedCheckpoint, error) {
	body, err := c.Body()
	if err != nil {
		return SignedCheckpoint{}, err
	}
	msg, err := note.Sign(&note.Note{Text: string(body)}, signers...)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg}, nil
}

// splitNote separates a signed note's text from its signature lines
// without verifying anything.
func splitNote(msg []byte) (text []byte, sigLines [][]byte, err error) {
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 || len(msg) == split+2 || msg[len(msg)-1] != '\n' {
		return nil, nil, fmt.Errorf("%w: checkpoint is not a signed note (no signature block)", ErrMalformed)
	}
	text = msg[:split+1]
	for _, line := range bytes.SplitAfter(msg[split+2:], []byte("\n")) {
		if len(line) > 0 {
			sigLines = append(sigLines, line)
		}
	}
	return text, sigLines, nil
}

// ParseSignedCheckpoint parses a signed checkpoint without checking any
// signature. Use it only on checkpoints from a trusted source, such as the
// log itself; verifiers use [OpenCheckpoint].
func ParseSignedCheckpoint(msg []byte) (SignedCheckpoint, error) {
	if len(msg) > MaxCheckpointSize {
		return SignedCheckpoint{}, fmt.Errorf("%w: checkpoint is %d bytes, more than %d", ErrMalformed, len(msg), MaxCheckpointSize)
	}
	text, _, err := splitNote(msg)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	c, err := ParseCheckpointBody(text)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg}, nil
}

// CombineSignatures merges signed notes of the same checkpoint, as signed by
// different nodes, into one note carrying every distinct signature.
func CombineSignatures(notes ...[]byte) ([]byte, error) {
	if len(notes) == 0 {
		return nil, errors.New("no notes to combine")
	}
	var text []byte
	var out bytes.Buffer
	seen := make(map[string]bool)
	for i, msg := range notes {
		t, sigs, err := splitNote(msg)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			text = t
			out.Write(t)
			out.WriteByte('\n')
		} else if !bytes.Equal(t, text) {
			return nil, fmt.Errorf("note %d signs a different checkpoint", i)
		}
		for _, s := range sigs {
			if !seen[string(s)] {
				seen[string(s)] = true
				out.Write(s)
			}
		}
	}
	return out.Bytes(), nil
}

// OpenCheckpoint verifies a signed checkpoint under a policy: every
// signature by a trusted key must verify, at least MinSignatures distinct
// trusted keys must have signed, and the origin must be the policy's when it
// names one. Errors are [*VerifyError] values wrapping ErrMalformed,
// ErrSignatureInvalid, ErrTooFewSignatures or ErrWrongLog.
func OpenCheckpoint(msg []byte, p Policy) (SignedCheckpoint, error) {
	if err := p.Validate(); err != nil {
		return SignedCheckpoint{}, err
	}
	return openCheckpoint(msg, &p, note.VerifierList(p.Verifiers...))
}

func openCheckpoint(msg []byte, p *Policy, known note.Verifiers) (SignedCheckpoint, error) {
	if len(msg) > MaxCheckpointSize {
		return SignedCheckpoint{}, verifyErr(ErrMalformed, "checkpoint is %d bytes, more than %d", len(msg), MaxCheckpointSize)
	}
	_, sigLines, err := splitNote(msg)
	if err != nil {
		return SignedCheckpoint{}, &VerifyError{Err: ErrMalformed, Detail: err.Error()}
	}
	// note.Open calls any damage "malformed"; a damaged signature line
	// deserves the more precise verdict.
	for i, line := range sigLines {
		name, b64, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(string(line), "— "), "\n"), " ")
		sig, err := base64.StdEncoding.Strict().DecodeString(b64)
		if !strings.HasPrefix(string(line), "— ") || !ok || name == "" || err != nil || len(sig) < 5 || strings.ContainsAny(b64, "\r\n") {
			return SignedCheckpoint{}, verifyErr(ErrSignatureInvalid, "signature line %d is damaged", i+1)
		}
	}
	n, err := note.Open(msg, known)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &invalid):
		return SignedCheckpoint{}, verifyErr(ErrSignatureInvalid, "the signature by %q does not verify", invalid.Name)
	case errors.As(err, &unverified):
		n = unverified.Note
	case err != nil:
		return SignedCheckpoint{}, verifyErr(ErrMalformed, "checkpoint note: %v", err)
	}
	// A signature under a trusted name that is not by the trusted key (its
	// key hash differs) was altered or forged.
	for _, s := range n.UnverifiedSigs {
		for _, v := range p.Verifiers {
			if v.Name() == s.Name {
				return SignedCheckpoint{}, verifyErr(ErrSignatureInvalid, "the signature by %q is not made with its trusted key", s.Name)
			}
		}
	}
	if len(n.Sigs) == 0 {
		return SignedCheckpoint{}, verifyErr(ErrTooFewSignatures, "no signature by a trusted key (signed by %s)", sigNames(n.UnverifiedSigs))
	}
	if len(n.Sigs) < p.minSignatures() {
		return SignedCheckpoint{}, verifyErr(ErrTooFewSignatures, "%d trusted signature(s) (%s), policy requires %d", len(n.Sigs), sigNames(n.Sigs), p.minSignatures())
	}
	c, err := ParseCheckpointBody([]byte(n.Text))
	if err != nil {
		return SignedCheckpoint{}, &VerifyError{Err: ErrMalformed, Detail: err.Error()}
	}
	if p.Origin != "" && c.Origin != p.Origin {
		return SignedCheckpoint{}, verifyErr(ErrWrongLog, "checkpoint is from log %q, policy expects %q", c.Origin, p.Origin)
	}
	signers := make([]string, len(n.Sigs))
	for i, s := range n.Sigs {
		signers[i] = s.Name
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg, Signers: signers}, nil
}

func sigNames(sigs []note.Signature) string {
	if len(sigs) == 0 {
		return "nobody"
	}
	names := make([]string, len(sigs))
	for i, s := range sigs {
		names[i] = strconv.Quote(s.Name)
	}
	return strings.Join(names, ", ")
}
