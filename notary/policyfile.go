package notary

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Limits of a policy file (docs/FORMATS.md §9).
const (
	MaxPolicySize     = 64 << 10 // bytes in a policy file
	MaxPolicyLine     = 1024     // bytes in one of its lines
	MaxPolicyNodes    = 64       // node lines
	MaxPolicyWitness  = 64       // witness lines
	MaxPolicyGroups   = 64       // group lines
	MaxPolicyNameSize = 64       // bytes in a witness or group name
)

// PolicyFileError is a policy file's refusal: the line (0 for the file as a
// whole), the field, and why.
type PolicyFileError struct {
	Line  int
	Field string
	Msg   string
}

// Error returns "policy line <n>: <field>: <msg>", or "policy: <msg>" for
// the file as a whole.
func (e *PolicyFileError) Error() string {
	switch {
	case e.Line == 0 && e.Field == "":
		return "policy: " + e.Msg
	case e.Line == 0:
		return "policy: " + e.Field + ": " + e.Msg
	case e.Field == "":
		return fmt.Sprintf("policy line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("policy line %d: %s: %s", e.Line, e.Field, e.Msg)
}

// PolicyFile is a parsed policy file: the policy and its fingerprint.
type PolicyFile struct {
	Policy Policy
	// Canonical is the policy's canonical text (docs/FORMATS.md §9): the
	// same for every file that states the same policy.
	Canonical []byte
}

// Fingerprint is the hex SHA-256 of the policy's canonical text: what an
// operator publishes and a verifier compares to know it holds the same
// policy.
func (f *PolicyFile) Fingerprint() string {
	sum := sha256.Sum256(f.Canonical)
	return hex.EncodeToString(sum[:])
}

// policyLine is one line's fields and number.
type policyLine struct {
	n      int
	fields []string
}

// ParsePolicy reads a policy file (docs/FORMATS.md §9). It refuses unknown
// keywords, repeated lines and keys, keys that are not verifier keys,
// thresholds that cannot be met and anything over the limits, with a
// [*PolicyFileError] naming the line and field.
func ParsePolicy(text []byte) (*PolicyFile, error) {
	if len(text) > MaxPolicySize {
		return nil, &PolicyFileError{Msg: fmt.Sprintf("file is %d bytes, more than %d", len(text), MaxPolicySize)}
	}
	var lines []policyLine
	for n, rest := 1, text; len(rest) > 0; n++ {
		line, after, _ := bytes.Cut(rest, []byte("\n"))
		rest = after
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > MaxPolicyLine {
			return nil, &PolicyFileError{Line: n, Msg: fmt.Sprintf("line is %d bytes, more than %d", len(line), MaxPolicyLine)}
		}
		if !utf8.Valid(line) {
			return nil, &PolicyFileError{Line: n, Msg: "not valid UTF-8"}
		}
		for _, c := range line {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return nil, &PolicyFileError{Line: n, Msg: fmt.Sprintf("control character 0x%02x", c)}
			}
		}
		fields := strings.FieldsFunc(string(line), func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		lines = append(lines, policyLine{n: n, fields: fields})
	}
	b := policyBuilder{defined: map[string]int{}, groupAt: map[string]int{}}
	for _, l := range lines {
		if err := b.line(l); err != nil {
			return nil, err
		}
	}
	return b.finish()
}

type policyBuilder struct {
	p          Policy
	originLine int
	keys       []string // node verifier key texts, as Verifiers
	keyLines   []int
	sigsLine   int
	witnesses  []int // line of each witness
	defined    map[string]int
	groupAt    map[string]int // group name → index in p.Groups
	quorumLine int
	quorum     string
}

// usage is each keyword's synopsis, for lines with a wrong number of fields.
var policyUsage = map[string]string{
	"origin":          "origin <origin>",
	"node":            "node <verifier key> [from <size>] [until <size>]",
	"node-signatures": "node-signatures <k>",
	"witness":         "witness <name> <cosignature verifier key>",
	"group":           "group <name> <k> <member>...",
	"quorum":          "quorum <name or k>",
}

func (b *policyBuilder) line(l policyLine) error {
	kw, args := l.fields[0], l.fields[1:]
	bad := func(field, format string, a ...any) error {
		return &PolicyFileError{Line: l.n, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	usage, ok := policyUsage[kw]
	if !ok {
		return bad("", "unknown keyword %q", kw)
	}
	wrongFields := func() error { return bad(kw, "want %q", usage) }
	switch kw {
	case "origin":
		if len(args) != 1 {
			return wrongFields()
		}
		if b.originLine != 0 {
			return bad(kw, "a second origin line (the first is line %d)", b.originLine)
		}
		if err := ValidateOrigin(args[0]); err != nil {
			return bad(kw, "%v", err)
		}
		b.p.Origin, b.originLine = args[0], l.n
	case "node":
		if len(args) != 1 && len(args) != 3 && len(args) != 5 {
			return wrongFields()
		}
		if len(b.keys) == MaxPolicyNodes {
			return bad(kw, "more than %d node lines", MaxPolicyNodes)
		}
		if strings.HasPrefix(args[0], "PRIVATE+KEY+") {
			return bad("node key", "a private signer key; give its verifier key, and keep the private one secret")
		}
		v, err := note.NewVerifier(args[0])
		if err != nil {
			return bad("node key", "not a note verifier key: %v", err)
		}
		r := AllSizes
		var given [2]bool
		for opt := args[1:]; len(opt) > 0; opt = opt[2:] {
			var which int
			switch opt[0] {
			case "from":
				which = 0
			case "until":
				which = 1
			default:
				return bad(kw, "unknown option %q (want from or until)", opt[0])
			}
			if given[which] {
				return bad("node "+opt[0], "given twice")
			}
			given[which] = true
			size, err := parsePolicyNumber(opt[1])
			if err != nil {
				return bad("node "+opt[0], "%v", err)
			}
			if which == 0 {
				r.From = size
			} else {
				r.Until = size
			}
		}
		if r.From > r.Until {
			return bad("node until", "%d is below from %d", r.Until, r.From)
		}
		for i, k := range b.keys {
			if k == args[0] {
				return bad("node key", "the same key as line %d", b.keyLines[i])
			}
			if w := b.p.Verifiers[i]; w.Name() == v.Name() && w.KeyHash() == v.KeyHash() {
				return bad("node key", "the same name and key hash as line %d", b.keyLines[i])
			}
			if b.p.Verifiers[i].Name() == v.Name() && b.p.Ranges[i].overlaps(r) {
				return bad("node key", "a second key named %q valid at log sizes of line %d's; give them from and until ranges apart", v.Name(), b.keyLines[i])
			}
		}
		b.p.Verifiers = append(b.p.Verifiers, v)
		b.p.Ranges = append(b.p.Ranges, r)
		b.keys = append(b.keys, args[0])
		b.keyLines = append(b.keyLines, l.n)
	case "node-signatures":
		if len(args) != 1 {
			return wrongFields()
		}
		if b.sigsLine != 0 {
			return bad(kw, "a second node-signatures line (the first is line %d)", b.sigsLine)
		}
		k, err := parsePolicyCount(args[0])
		if err != nil {
			return bad(kw, "%v", err)
		}
		b.p.MinSignatures, b.sigsLine = k, l.n
	case "witness":
		if len(args) != 2 {
			return wrongFields()
		}
		if len(b.p.Witnesses) == MaxPolicyWitness {
			return bad(kw, "more than %d witness lines", MaxPolicyWitness)
		}
		if err := b.define(args[0]); err != nil {
			return bad("witness name", "%v", err)
		}
		if strings.HasPrefix(args[1], "PRIVATE+KEY+") {
			return bad("witness key", "a private signer key; give its verifier key, and keep the private one secret")
		}
		v, err := NewCosignatureVerifier(args[1])
		if err != nil {
			return bad("witness key", "not a cosignature/v1 verifier key: %v", err)
		}
		for i, w := range b.p.Witnesses {
			if w.Key == args[1] {
				return bad("witness key", "the same key as line %d", b.witnesses[i])
			}
			if w.Verifier.Name() == v.Name() && w.Verifier.KeyHash() == v.KeyHash() {
				return bad("witness key", "the same name and key hash as line %d", b.witnesses[i])
			}
		}
		for i, nv := range b.p.Verifiers {
			if nv.Name() == v.Name() && nv.KeyHash() == v.KeyHash() {
				return bad("witness key", "the same name and key hash as the node key of line %d", b.keyLines[i])
			}
		}
		b.defined[args[0]] = l.n
		b.witnesses = append(b.witnesses, l.n)
		b.p.Witnesses = append(b.p.Witnesses, Witness{Name: args[0], Key: args[1], Verifier: v})
	case "group":
		if len(args) < 3 {
			return wrongFields()
		}
		if len(b.p.Groups) == MaxPolicyGroups {
			return bad(kw, "more than %d group lines", MaxPolicyGroups)
		}
		name := args[0]
		if err := b.define(name); err != nil {
			return bad("group name", "%v", err)
		}
		k, err := parsePolicyCount(args[1])
		if err != nil {
			return bad("group "+name+" threshold", "%v", err)
		}
		members := args[2:]
		for i, m := range members {
			if _, ok := b.defined[m]; !ok {
				return bad("group "+name+" member", "%q is not a witness or group defined above", m)
			}
			if slices.Contains(members[:i], m) {
				return bad("group "+name+" member", "%q is listed twice", m)
			}
		}
		if k > len(members) {
			return bad("group "+name+" threshold", "%d is more than its %d members", k, len(members))
		}
		b.defined[name] = l.n
		b.groupAt[name] = len(b.p.Groups)
		b.p.Groups = append(b.p.Groups, WitnessGroup{Name: name, Threshold: k, Members: slices.Clone(members)})
	case "quorum":
		if len(args) != 1 {
			return wrongFields()
		}
		if b.quorumLine != 0 {
			return bad(kw, "a second quorum line (the first is line %d)", b.quorumLine)
		}
		b.quorum, b.quorumLine = args[0], l.n
	}
	return nil
}

// define checks that name can name a new witness or group.
func (b *policyBuilder) define(name string) error {
	if !isPolicyName(name) {
		return fmt.Errorf("%q is not a name (1 to %d of A-Z a-z 0-9 . _ -)", name, MaxPolicyNameSize)
	}
	if isDecimal(name) {
		return fmt.Errorf("%q is a number; a name needs a character other than a digit", name)
	}
	if at, ok := b.defined[name]; ok {
		return fmt.Errorf("%q is already defined on line %d", name, at)
	}
	return nil
}

func (b *policyBuilder) finish() (*PolicyFile, error) {
	whole := func(format string, a ...any) error { return &PolicyFileError{Msg: fmt.Sprintf(format, a...)} }
	switch {
	case b.originLine == 0:
		return nil, whole("no origin line")
	case len(b.keys) == 0:
		return nil, whole("no node line")
	case b.sigsLine == 0:
		return nil, whole("no node-signatures line")
	}
	if names := b.p.nodeNames(); b.p.MinSignatures > names {
		return nil, &PolicyFileError{Line: b.sigsLine, Field: "node-signatures", Msg: fmt.Sprintf("%d required but the policy trusts %d nodes", b.p.MinSignatures, names)}
	}
	switch {
	case len(b.p.Witnesses) > 0 && b.quorumLine == 0:
		return nil, whole("witnesses are listed but there is no quorum line")
	case len(b.p.Witnesses) == 0 && b.quorumLine != 0:
		return nil, &PolicyFileError{Line: b.quorumLine, Field: "quorum", Msg: "no witness is listed"}
	}
	if b.quorumLine != 0 {
		bad := func(format string, a ...any) error {
			return &PolicyFileError{Line: b.quorumLine, Field: "quorum", Msg: fmt.Sprintf(format, a...)}
		}
		if isDecimal(b.quorum) {
			k, err := parsePolicyCount(b.quorum)
			if err != nil {
				return nil, bad("%v", err)
			}
			if k > len(b.p.Witnesses) {
				return nil, bad("%d cosignatures required but the policy lists %d witnesses", k, len(b.p.Witnesses))
			}
			b.p.MinCosignatures = k
		} else {
			if _, ok := b.defined[b.quorum]; !ok {
				return nil, bad("%q is not a witness or group", b.quorum)
			}
			b.p.Quorum = b.quorum
		}
	}
	if err := b.p.Validate(); err != nil {
		return nil, whole("%v", err) // unreachable: the lines were checked
	}
	return &PolicyFile{Policy: b.p, Canonical: b.canonical()}, nil
}

// canonical writes the policy in canonical form: origin; node lines sorted
// by key, with from and until only when they limit; node-signatures;
// witness lines sorted by name; group lines in file order with members
// sorted; quorum. Every line ends in a newline; no comments.
func (b *policyBuilder) canonical() []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "origin %s\n", b.p.Origin)
	order := make([]int, len(b.keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return strings.Compare(b.keys[i], b.keys[j]) })
	for _, i := range order {
		out.WriteString("node " + b.keys[i])
		if r := b.p.Ranges[i]; r.From != 0 {
			fmt.Fprintf(&out, " from %d", r.From)
		}
		if r := b.p.Ranges[i]; r.Until != math.MaxUint64 {
			fmt.Fprintf(&out, " until %d", r.Until)
		}
		out.WriteByte('\n')
	}
	fmt.Fprintf(&out, "node-signatures %d\n", b.p.MinSignatures)
	ws := slices.Clone(b.p.Witnesses)
	slices.SortFunc(ws, func(a, b Witness) int { return strings.Compare(a.Name, b.Name) })
	for _, w := range ws {
		fmt.Fprintf(&out, "witness %s %s\n", w.Name, w.Key)
	}
	for _, g := range b.p.Groups {
		fmt.Fprintf(&out, "group %s %d %s\n", g.Name, g.Threshold, strings.Join(slices.Sorted(slices.Values(g.Members)), " "))
	}
	switch {
	case b.p.Quorum != "":
		fmt.Fprintf(&out, "quorum %s\n", b.p.Quorum)
	case b.p.MinCosignatures != 0:
		fmt.Fprintf(&out, "quorum %d\n", b.p.MinCosignatures)
	}
	return out.Bytes()
}

// isPolicyName reports whether s can name a witness or group.
func isPolicyName(s string) bool {
	if s == "" || len(s) > MaxPolicyNameSize {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parsePolicyNumber reads a log size: decimal digits, no sign, no leading
// zero, at most 2^64-1.
func parsePolicyNumber(s string) (uint64, error) {
	if !isDecimal(s) || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is more than %d", s, uint64(math.MaxUint64))
	}
	return n, nil
}

// parsePolicyCount reads a threshold: 1 to 64 (more than any list it can
// count in).
func parsePolicyCount(s string) (int, error) {
	n, err := parsePolicyNumber(s)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, errors.New("must be at least 1")
	}
	if n > MaxPolicyWitness {
		return 0, fmt.Errorf("%d is more than %d", n, MaxPolicyWitness)
	}
	return int(n), nil
}

// cosignatureV1 is the algorithm byte of a cosignature/v1 verifier key
// (c2sp.org/tlog-cosignature).
const cosignatureV1 = 0x04

// NewCosignatureVerifier parses a witness's cosignature/v1 verifier key,
// "name+hash+base64(0x04 || Ed25519 public key)" (c2sp.org/signed-note,
// c2sp.org/tlog-cosignature), and returns a verifier of its cosignature
// lines on checkpoints: the signature is an 8-byte big-endian timestamp and
// the Ed25519 signature of "cosignature/v1\ntime <timestamp>\n" followed by
// the checkpoint body. torchwood.CosignatureSigner makes such lines.
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(key64)
	if !ok1 || !ok2 || len(hash16) != 8 || err1 != nil || err2 != nil || !isKeyName(name) || len(key) == 0 {
		return nil, errors.New("malformed verifier id")
	}
	if key[0] != cosignatureV1 {
		return nil, errors.New("unknown verifier algorithm")
	}
	if len(key) != 1+ed25519.PublicKeySize {
		return nil, errors.New("malformed verifier id")
	}
	id := sha256.Sum256(append([]byte(name+"\n"), key...))
	if uint32(hash) != binary.BigEndian.Uint32(id[:4]) {
		return nil, errors.New("invalid verifier hash")
	}
	return &cosignatureVerifier{name: name, hash: uint32(hash), pub: ed25519.PublicKey(key[1:])}, nil
}

// isKeyName is the signed-note rule for key names: not empty, UTF-8,
// without Unicode spaces or plus signs.
func isKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

type cosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > math.MaxInt64 {
		return false
	}
	signed := make([]byte, 0, 40+len(msg))
	signed = append(signed, "cosignature/v1\ntime "...)
	signed = strconv.AppendUint(signed, t, 10)
	signed = append(append(signed, '\n'), msg...)
	return ed25519.Verify(v.pub, signed, sig[8:])
}
