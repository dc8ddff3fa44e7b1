package notary_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	cplog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// testCheckpoint is a checkpoint whose root spells '+' and '/' in base64.
func testCheckpoint() notary.Checkpoint {
	var root notary.Hash
	copy(root[:], sequence(0xf0, notary.HashSize))
	return notary.Checkpoint{Origin: testOrigin, Size: 1234, Root: root, Timestamp: baseTime}
}

func TestCheckpointInteroperates(t *testing.T) {
	k := newKeypair(t, "node-1")
	cp := testCheckpoint()
	signed, err := cp.Sign(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed.Note, note.VerifierList(k.verifier))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != "node-1" || len(n.UnverifiedSigs) != 0 {
		t.Fatalf("note.Open signatures %+v, unverified %+v", n.Sigs, n.UnverifiedSigs)
	}
	var lc cplog.Checkpoint
	rest, err := lc.Unmarshal([]byte(n.Text))
	if err != nil {
		t.Fatalf("log.Checkpoint.Unmarshal: %v", err)
	}
	wantExt := "timestamp " + strconv.FormatInt(baseTime, 10) + "\n"
	if lc.Origin != cp.Origin || lc.Size != cp.Size || !bytes.Equal(lc.Hash, cp.Root[:]) || string(rest) != wantExt {
		t.Fatalf("formats/log reads origin %q size %d root %x rest %q", lc.Origin, lc.Size, lc.Hash, rest)
	}
	body, err := cp.Body()
	if err != nil || n.Text != string(body) {
		t.Fatalf("note text %q, Body %q (%v)", n.Text, body, err)
	}

	parsed, ext, _, err := cplog.ParseCheckpoint(signed.Note, testOrigin, k.verifier)
	if err != nil {
		t.Fatalf("log.ParseCheckpoint: %v", err)
	}
	if parsed.Origin != cp.Origin || parsed.Size != cp.Size || !bytes.Equal(parsed.Hash, cp.Root[:]) || string(ext) != wantExt {
		t.Fatalf("log.ParseCheckpoint: %+v, extension %q", parsed, ext)
	}
	if _, _, _, err := cplog.ParseCheckpoint(signed.Note, testOrigin, newKeypair(t, "node-1").verifier); err == nil {
		t.Fatal("log.ParseCheckpoint accepts another key of the same name")
	}

	back, err := notary.ParseCheckpointBody(body)
	if err != nil || back != cp {
		t.Fatalf("ParseCheckpointBody = %+v, %v", back, err)
	}
	opened, err := notary.OpenCheckpoint(signed.Note, policyOf(k))
	if err != nil || opened.Checkpoint != cp || strings.Join(opened.Signers, ",") != "node-1" || !bytes.Equal(opened.Note, signed.Note) {
		t.Fatalf("OpenCheckpoint = %+v, %v", opened, err)
	}
}

func TestCheckpointSeveralSignatures(t *testing.T) {
	keys := []keypair{newKeypair(t, "node-1"), newKeypair(t, "node-2"), newKeypair(t, "node-3")}
	cp := testCheckpoint()
	var signers []note.Signer
	var singles [][]byte
	for _, k := range keys {
		signers = append(signers, k.signer)
		s, err := cp.Sign(k.signer)
		if err != nil {
			t.Fatal(err)
		}
		singles = append(singles, s.Note)
	}
	multi, err := cp.Sign(signers...)
	if err != nil {
		t.Fatal(err)
	}
	combined, err := notary.CombineSignatures(singles...)
	if err != nil {
		t.Fatal(err)
	}
	// Ed25519 signatures are deterministic, so both ways give one note.
	if !bytes.Equal(combined, multi.Note) {
		t.Errorf("combined note differs from the note signed by all three:\n%s\n%s", combined, multi.Note)
	}
	// A signature seen twice is kept once.
	dedup, err := notary.CombineSignatures(singles[0], singles[1], singles[0], singles[2], singles[1])
	if err != nil || !bytes.Equal(dedup, combined) {
		t.Errorf("combining repeated signatures: %v\n%s", err, dedup)
	}
	policy := policyOf(keys...)
	policy.MinSignatures = 3
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"signed by three", multi.Note},
		{"three combined", combined},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := note.Open(tc.msg, note.VerifierList(keys[0].verifier, keys[1].verifier, keys[2].verifier))
			if err != nil {
				t.Fatalf("note.Open: %v", err)
			}
			var names []string
			for _, s := range n.Sigs {
				names = append(names, s.Name)
			}
			if strings.Join(names, ",") != "node-1,node-2,node-3" {
				t.Fatalf("note.Open verified %q", names)
			}
			opened, err := notary.OpenCheckpoint(tc.msg, policy)
			if err != nil {
				t.Fatalf("OpenCheckpoint, 3 of 3: %v", err)
			}
			if opened.Checkpoint != cp || strings.Join(opened.Signers, ",") != "node-1,node-2,node-3" {
				t.Fatalf("OpenCheckpoint = %+v", opened)
			}
		})
	}
	// Two of the three do not meet the policy.
	two, err := notary.CombineSignatures(singles[0], singles[2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.OpenCheckpoint(two, policy); !errors.Is(err, notary.ErrTooFewSignatures) {
		t.Fatalf("2 signatures under a 3 of 3 policy: %v, want ErrTooFewSignatures", err)
	}

	other := cp
	other.Size++
	otherNote, err := other.Sign(keys[1].signer)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := notary.CombineSignatures(singles[0], otherNote.Note); err == nil {
		t.Fatalf("combined notes of different checkpoints:\n%s", c)
	}
	body, _ := cp.Body()
	if c, err := notary.CombineSignatures(singles[0], body); !errors.Is(err, notary.ErrMalformed) {
		t.Fatalf("combined a note without signatures: %v\n%s", err, c)
	}
	if c, err := notary.CombineSignatures(); err == nil {
		t.Fatalf("combined nothing into %q", c)
	}
}

func TestParseCheckpointBodyRefuses(t *testing.T) {
	cp := testCheckpoint()
	valid, err := cp.Body()
	if err != nil {
		t.Fatal(err)
	}
	root := base64.StdEncoding.EncodeToString(cp.Root[:])
	if !strings.ContainsAny(root, "+/") {
		t.Fatalf("root %s does not exercise the base64 alphabet", root)
	}
	ts := strconv.FormatInt(baseTime, 10)
	body := func(origin, size, root string, ext ...string) string {
		s := origin + "\n" + size + "\n" + root + "\n"
		for _, e := range ext {
			s += e + "\n"
		}
		return s
	}
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	for _, tc := range []struct {
		name string
		text string
		ok   bool
	}{
		{"canonical", body(testOrigin, "1234", root, "timestamp "+ts), true},
		{"size zero", body(testOrigin, "0", root, "timestamp 0"), true},
		{"leading zero in size", body(testOrigin, "01234", root, "timestamp "+ts), false},
		{"size zero twice", body(testOrigin, "00", root, "timestamp "+ts), false},
		{"plus sign in size", body(testOrigin, "+1234", root, "timestamp "+ts), false},
		{"negative size", body(testOrigin, "-1", root, "timestamp "+ts), false},
		{"size with spaces", body(testOrigin, " 1234", root, "timestamp "+ts), false},
		{"size overflow", body(testOrigin, "18446744073709551616", root, "timestamp "+ts), false},
		{"root of 31 bytes", body(testOrigin, "1234", b64(31), "timestamp "+ts), false},
		{"root of 33 bytes", body(testOrigin, "1234", b64(33), "timestamp "+ts), false},
		{"empty root", body(testOrigin, "1234", "", "timestamp "+ts), false},
		{"root with embedded newline", body(testOrigin, "1234", root[:20]+"\n"+root[20:], "timestamp "+ts), false},
		{"root with embedded CR LF", body(testOrigin, "1234", root[:20]+"\r\n"+root[20:], "timestamp "+ts), false},
		{"root without padding", body(testOrigin, "1234", strings.TrimRight(root, "="), "timestamp "+ts), false},
		{"root in URL-safe base64", body(testOrigin, "1234", base64.URLEncoding.EncodeToString(cp.Root[:]), "timestamp "+ts), false},
		{"root with trailing space", body(testOrigin, "1234", root+" ", "timestamp "+ts), false},
		{"missing timestamp line", body(testOrigin, "1234", root), false},
		{"extra line", body(testOrigin, "1234", root, "timestamp "+ts, "extra"), false},
		{"extra empty line", body(testOrigin, "1234", root, "timestamp "+ts, ""), false},
		{"two timestamp lines", body(testOrigin, "1234", root, "timestamp "+ts, "timestamp "+ts), false},
		{"another extension line first", body(testOrigin, "1234", root, "other 1", "timestamp "+ts), false},
		{"timestamp line without newline", body(testOrigin, "1234", root) + "timestamp " + ts, false},
		{"no final newline", strings.TrimSuffix(string(valid), "\n"), false},
		{"timestamp not numeric", body(testOrigin, "1234", root, "timestamp soon"), false},
		{"timestamp empty", body(testOrigin, "1234", root, "timestamp "), false},
		{"timestamp negative", body(testOrigin, "1234", root, "timestamp -1"), false},
		{"timestamp with plus", body(testOrigin, "1234", root, "timestamp +"+ts), false},
		{"timestamp with leading zero", body(testOrigin, "1234", root, "timestamp 0"+ts), false},
		{"timestamp fractional", body(testOrigin, "1234", root, "timestamp "+ts+".0"), false},
		{"timestamp overflow", body(testOrigin, "1234", root, "timestamp 9223372036854775808"), false},
		{"timestamp with two spaces", body(testOrigin, "1234", root, "timestamp  "+ts), false},
		{"timestamp capitalized", body(testOrigin, "1234", root, "Timestamp "+ts), false},
		{"origin with a space", body("notary.test log", "1234", root, "timestamp "+ts), false},
		{"origin with a plus", body("notary.test+log", "1234", root, "timestamp "+ts), false},
		{"origin with a tab", body("notary.test\tlog", "1234", root, "timestamp "+ts), false},
		{"origin with trailing space", body(testOrigin+" ", "1234", root, "timestamp "+ts), false},
		{"empty origin", body("", "1234", root, "timestamp "+ts), false},
		{"origin of 256 bytes", body(strings.Repeat("o", 256), "1234", root, "timestamp "+ts), false},
		{"origin not UTF-8", body("notary\xff", "1234", root, "timestamp "+ts), false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := notary.ParseCheckpointBody([]byte(tc.text))
			if tc.ok {
				if err != nil {
					t.Fatalf("ParseCheckpointBody: %v", err)
				}
				body, err := got.Body()
				if err != nil || string(body) != tc.text {
					t.Fatalf("Body of %+v = %q, %v", got, body, err)
				}
				return
			}
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("ParseCheckpointBody(%q) = %+v, %v; want ErrMalformed", tc.text, got, err)
			}
		})
	}
	if string(valid) != body(testOrigin, "1234", root, "timestamp "+ts) {
		t.Fatalf("Body = %q", valid)
	}
}

func TestOpenCheckpointRefuses(t *testing.T) {
	n1, n2, stranger := newKeypair(t, "node-1"), newKeypair(t, "node-2"), newKeypair(t, "stranger")
	cp := testCheckpoint()
	signed, err := cp.Sign(n1.signer)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := cp.Body()
	// One long-named signer makes a note over the size limit.
	long := newKeypair(t, strings.Repeat("n", notary.MaxCheckpointSize))
	oversize, err := cp.Sign(n1.signer, long.signer)
	if err != nil {
		t.Fatal(err)
	}
	byStranger, _ := cp.Sign(stranger.signer)
	tampered := bytes.Replace(signed.Note, []byte("\n1234\n"), []byte("\n1235\n"), 1)
	tamperedTime := bytes.Replace(signed.Note, []byte(strconv.FormatInt(baseTime, 10)), []byte(strconv.FormatInt(baseTime+1, 10)), 1)
	elsewhere := cp
	elsewhere.Origin = "elsewhere.test/log"
	fromElsewhere, _ := elsewhere.Sign(n1.signer)
	nonCanonical := notary.Checkpoint{Origin: testOrigin, Size: 1234, Root: cp.Root, Timestamp: baseTime}
	ncBody, _ := nonCanonical.Body()
	ncBody = bytes.Replace(ncBody, []byte("\n1234\n"), []byte("\n01234\n"), 1)
	ncNote, err := note.Sign(&note.Note{Text: string(ncBody)}, n1.signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		msg    []byte
		policy notary.Policy
		want   error
	}{
		{"valid", signed.Note, policyOf(n1), nil},
		{"valid, untrusted co-signer", func() []byte { c, _ := notary.CombineSignatures(signed.Note, byStranger.Note); return c }(), policyOf(n1), nil},
		{"over MaxCheckpointSize", oversize.Note, policyOf(n1), notary.ErrMalformed},
		{"no signatures", body, policyOf(n1), notary.ErrMalformed},
		{"blank line but no signatures", append(bytes.Clone(body), '\n'), policyOf(n1), notary.ErrMalformed},
		{"empty", nil, policyOf(n1), notary.ErrMalformed},
		{"signed body not canonical", ncNote, policyOf(n1), notary.ErrMalformed},
		{"untrusted signer", byStranger.Note, policyOf(n1), notary.ErrTooFewSignatures},
		{"trusted signer missing", signed.Note, policyOf(n2), notary.ErrTooFewSignatures},
		{"too few trusted signers", signed.Note, notary.Policy{Verifiers: []note.Verifier{n1.verifier, n2.verifier}, MinSignatures: 2}, notary.ErrTooFewSignatures},
		{"tampered size", tampered, policyOf(n1), notary.ErrSignatureInvalid},
		{"tampered timestamp", tamperedTime, policyOf(n1), notary.ErrSignatureInvalid},
		{"other origin", fromElsewhere.Note, policyOf(n1), notary.ErrWrongLog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "over MaxCheckpointSize" && len(tc.msg) <= notary.MaxCheckpointSize {
				t.Fatalf("note is only %d bytes", len(tc.msg))
			}
			got, err := notary.OpenCheckpoint(tc.msg, tc.policy)
			if tc.want == nil {
				if err != nil || got.Checkpoint.Origin != testOrigin {
					t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenCheckpoint: %v, want %v", err, tc.want)
			}
			var ve *notary.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is a %T, not a *VerifyError", err, err)
			}
		})
	}
	// The oversize note is otherwise valid: only the limit refuses it.
	if n, err := note.Open(oversize.Note, note.VerifierList(n1.verifier, long.verifier)); err != nil || len(n.Sigs) != 2 {
		t.Fatalf("oversize note does not open with note.Open: %v", err)
	}
}

func TestNewSignerDerivesTheVerifierKey(t *testing.T) {
	// Many keys, so some hold '+' in their base64.
	var skey, vkey string
	for range 64 {
		var err error
		if skey, vkey, err = notary.GenerateKey("notary-7.example.org"); err != nil {
			t.Fatal(err)
		}
		s, got, err := notary.NewSigner(skey + "\n")
		if err != nil {
			t.Fatalf("%s: %v", skey, err)
		}
		if got != vkey || s.Name() != "notary-7.example.org" {
			t.Fatalf("derived %q for %q, want %q", got, s.Name(), vkey)
		}
	}
	for _, bad := range []string{"", vkey, "PRIVATE+KEY+x+00000000+AAAA"} {
		if _, _, err := notary.NewSigner(bad); err == nil {
			t.Errorf("NewSigner(%q) accepted it", bad)
		}
	}
}
