package notary

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
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
	// Cosigners names, by their policy names, the witnesses whose
	// cosignature verified, when the policy has witnesses.
	Cosigners []string
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
// signature by a trusted key (node or witness) must verify, at least
// MinSignatures distinct trusted node names must have signed with a key valid
// at the checkpoint's size, the witness quorum must be met when the policy
// has witnesses, and the origin must be the policy's when it names one.
// Errors are [*VerifyError] values wrapping ErrMalformed,
// ErrSignatureInvalid, ErrTooFewSignatures or ErrWrongLog.
func OpenCheckpoint(msg []byte, p Policy) (SignedCheckpoint, error) {
	if err := p.Validate(); err != nil {
		return SignedCheckpoint{}, err
	}
	return openCheckpoint(msg, &p, p.known())
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
	// A signature under a trusted node name that is not by a trusted key of
	// that name (its key hash differs) was altered or forged.
	for _, s := range n.UnverifiedSigs {
		for _, v := range p.Verifiers {
			if v.Name() == s.Name {
				return SignedCheckpoint{}, verifyErr(ErrSignatureInvalid, "the signature by %q is not made with its trusted key", s.Name)
			}
		}
	}
	// Count the node names that signed with a trusted key: first at any
	// size (so that too few signatures is the verdict on a checkpoint whose
	// body is also damaged), then, with the size read, by keys valid at it.
	signers, nodeSigs, retired := p.countNodes(n.Sigs, nil)
	if err := p.enoughNodes(signers, nodeSigs, retired, n.UnverifiedSigs, 0); err != nil {
		return SignedCheckpoint{}, err
	}
	c, err := ParseCheckpointBody([]byte(n.Text))
	if err != nil {
		return SignedCheckpoint{}, &VerifyError{Err: ErrMalformed, Detail: err.Error()}
	}
	if p.Ranges != nil {
		signers, nodeSigs, retired = p.countNodes(n.Sigs, &c.Size)
		if err := p.enoughNodes(signers, nodeSigs, retired, n.UnverifiedSigs, c.Size); err != nil {
			return SignedCheckpoint{}, err
		}
	}
	cosigned := make(map[string]bool)
	var cosigners []string
	for _, s := range n.Sigs {
		if w := p.witness(s); w != "" && !cosigned[w] {
			cosigned[w] = true
			cosigners = append(cosigners, w)
		}
	}
	if err := p.checkQuorum(cosigned); err != nil {
		return SignedCheckpoint{}, err
	}
	if p.Origin != "" && c.Origin != p.Origin {
		return SignedCheckpoint{}, verifyErr(ErrWrongLog, "checkpoint is from log %q, policy expects %q", c.Origin, p.Origin)
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg, Signers: signers, Cosigners: cosigners}, nil
}

// countNodes returns the distinct names of the trusted node keys among
// sigs, with one signature of each, and the signatures by trusted keys not
// valid at *size (when size is not nil).
func (p *Policy) countNodes(sigs []note.Signature, size *uint64) (signers []string, counted, retired []note.Signature) {
	for _, s := range sigs {
		i := p.nodeKey(s)
		switch {
		case i < 0:
		case size != nil && !p.rangeOf(i).Contains(*size):
			retired = append(retired, s)
		case !slices.Contains(signers, s.Name):
			signers = append(signers, s.Name)
			counted = append(counted, s)
		}
	}
	return signers, counted, retired
}

// enoughNodes checks the number of node signers against MinSignatures.
func (p *Policy) enoughNodes(signers []string, counted, retired, unverified []note.Signature, size uint64) error {
	if len(signers) >= p.minSignatures() {
		return nil
	}
	detail := fmt.Sprintf("%d node signatures required, %d valid", p.minSignatures(), len(signers))
	switch {
	case len(signers) > 0:
		detail += " (" + sigNames(counted) + ")"
	case len(retired) == 0:
		detail += fmt.Sprintf(": no signature by a trusted key (signed by %s)", sigNames(unverified))
	}
	if len(retired) > 0 {
		detail += fmt.Sprintf("; %s signed with a key not valid at size %d", sigNames(retired), size)
	}
	return verifyErr(ErrTooFewSignatures, "%s", detail)
}

// nodeKey returns the index of the trusted node key that made s, or -1.
func (p *Policy) nodeKey(s note.Signature) int {
	for i, v := range p.Verifiers {
		if v.Name() == s.Name && v.KeyHash() == s.Hash {
			return i
		}
	}
	return -1
}

// witness returns the policy name of the witness that made s, or "".
func (p *Policy) witness(s note.Signature) string {
	for _, w := range p.Witnesses {
		if w.Verifier.Name() == s.Name && w.Verifier.KeyHash() == s.Hash {
			return w.Name
		}
	}
	return ""
}

// checkQuorum checks the policy's witness requirement against the witnesses
// whose cosignature verified.
func (p *Policy) checkQuorum(cosigned map[string]bool) error {
	if len(p.Witnesses) == 0 {
		return nil
	}
	if p.Quorum == "" {
		if len(cosigned) < p.MinCosignatures {
			return verifyErr(ErrTooFewSignatures, "witness quorum needs %d of %d witnesses, %d valid", p.MinCosignatures, len(p.Witnesses), len(cosigned))
		}
		return nil
	}
	met := make(map[string]bool, len(p.Witnesses)+len(p.Groups))
	for w := range cosigned {
		met[w] = true
	}
	count := func(g WitnessGroup) int {
		k := 0
		for _, m := range g.Members {
			if met[m] {
				k++
			}
		}
		return k
	}
	for _, g := range p.Groups { // each group's members are defined before it
		met[g.Name] = count(g) >= g.Threshold
	}
	if met[p.Quorum] {
		return nil
	}
	for _, g := range p.Groups {
		if g.Name == p.Quorum {
			return verifyErr(ErrTooFewSignatures, "witness quorum %s needs %d of %d, %d valid", g.Name, g.Threshold, len(g.Members), count(g))
		}
	}
	return verifyErr(ErrTooFewSignatures, "witness quorum %s needs its cosignature, none valid", p.Quorum)
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
