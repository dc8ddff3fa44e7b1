package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// MaxResponseSize bounds the body of a witness's answer that a client
// reads: cosignature lines, a size, or an error message.
const MaxResponseSize = 16 << 10

// ContentTypeSize is the type of a 409 answer's body: the size of the
// checkpoint the witness last cosigned (c2sp.org/tlog-witness).
const ContentTypeSize = "text/x.tlog.size"

// RefusedError is a witness's refusal of an add-checkpoint request.
type RefusedError struct {
	// Status is the HTTP status of the answer.
	Status int
	// Known is, for a 409 Conflict, the size of the checkpoint the witness
	// last cosigned: the next request proves consistency from it.
	Known uint64
	// Message is the start of the body, for the logs.
	Message string
}

// Error describes the refusal.
func (e *RefusedError) Error() string {
	if e.Status == http.StatusConflict {
		return fmt.Sprintf("witness answered 409 Conflict: it last cosigned size %d", e.Known)
	}
	return fmt.Sprintf("witness answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// AddCheckpoint posts req to the witness whose submission prefix is url
// (the request goes to url + "/add-checkpoint") and returns the body of a
// 200 answer: cosignature lines, unverified (see [VerifyCosignature]). A
// refusal is a [*RefusedError].
func AddCheckpoint(ctx context.Context, hc *http.Client, url string, req Request) ([]byte, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(url, "/")+"/add-checkpoint", bytes.NewReader(req.Marshal()))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the witness's answer: %w", err)
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("the witness's answer is more than %d bytes", MaxResponseSize)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusConflict:
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if mt != ContentTypeSize {
			return nil, fmt.Errorf("the witness answered 409 with a body of type %q, not %s", resp.Header.Get("Content-Type"), ContentTypeSize)
		}
		known, err := ParseSize(body)
		if err != nil {
			return nil, fmt.Errorf("the witness answered 409: %w", err)
		}
		return nil, &RefusedError{Status: resp.StatusCode, Known: known}
	}
	msg := strings.TrimSpace(string(body[:min(len(body), 200)]))
	return nil, &RefusedError{Status: resp.StatusCode, Message: msg}
}

// ParseSize parses a text/x.tlog.size body: a decimal size without leading
// zeroes, and a newline.
func ParseSize(body []byte) (uint64, error) {
	s, ok := bytes.CutSuffix(body, []byte("\n"))
	if !ok {
		return 0, errors.New("size body does not end with a newline")
	}
	n, err := strconv.ParseUint(string(s), 10, 63)
	if err != nil || strconv.FormatUint(n, 10) != string(s) {
		return 0, fmt.Errorf("size %q is not a decimal without leading zeroes", s)
	}
	return n, nil
}

// VerifyCosignature finds, among the signature lines a witness answered,
// its cosignature of the signed note checkpoint, and returns that line once
// it verifies under v. Lines under other keys are ignored (a witness may
// sign with several algorithms); a line under v's name and key hash that
// does not verify, or none at all, is an error.
func VerifyCosignature(checkpoint, lines []byte, v note.Verifier) ([]byte, error) {
	i := bytes.LastIndex(checkpoint, []byte("\n\n"))
	if i < 0 {
		return nil, errors.New("the checkpoint is not a signed note")
	}
	body := checkpoint[:i+1]
	if len(lines) == 0 || lines[len(lines)-1] != '\n' {
		return nil, errors.New("the answer is not signature lines ending with a newline")
	}
	var found []byte
	for n, line := range bytes.SplitAfter(lines[:len(lines)-1], []byte("\n")) {
		if len(line) > 0 && line[len(line)-1] != '\n' {
			line = append(line, '\n')
		}
		name, hash, err := sigLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d of the answer: %w", n+1, err)
		}
		if name != v.Name() || hash != v.KeyHash() {
			continue
		}
		msg := append(append(append([]byte{}, body...), '\n'), line...)
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			return nil, fmt.Errorf("the cosignature by %q does not verify: %w", name, err)
		}
		if found != nil {
			return nil, fmt.Errorf("two cosignatures by %q", name)
		}
		found = line
	}
	if found == nil {
		return nil, fmt.Errorf("no cosignature by %q (key hash %08x) in the answer", v.Name(), v.KeyHash())
	}
	return found, nil
}

// sigLine reads the name and key hash of a note signature line
// ("— <name> <base64 of key hash and signature>\n").
func sigLine(line []byte) (string, uint32, error) {
	rest, ok := bytes.CutPrefix(line, []byte("— "))
	if !ok {
		return "", 0, errors.New("not a signature line")
	}
	name, b64, ok := bytes.Cut(bytes.TrimSuffix(rest, []byte("\n")), []byte(" "))
	if !ok || len(name) == 0 {
		return "", 0, errors.New("not a signature line")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(string(b64))
	if err != nil || len(sig) < 5 {
		return "", 0, errors.New("the signature is not base64 of a key hash and a signature")
	}
	return string(name), binary.BigEndian.Uint32(sig), nil
}
