package notary

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON scanner for the flat objects of receipts, which clients
// decode by the thousand: strings, whole numbers and lists of strings.
// It is strict where encoding/json is lenient (nulls, duplicate members,
// number spellings) and several times faster, since it uses no reflection.

type scanner struct {
	b []byte
	i int
}

var errTruncated = errors.New("unexpected end of JSON")

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.i >= len(s.b) {
			return errTruncated
		}
		return fmt.Errorf("want %q at byte %d, found %q", c, s.i, s.b[s.i])
	}
	s.i++
	return nil
}

// string reads a JSON string, decoding its escapes.
func (s *scanner) string() (string, error) {
	if err := s.expect('"'); err != nil {
		if s.i < len(s.b) && s.b[s.i] == 'n' {
			return "", errors.New("is null")
		}
		return "", err
	}
	start := s.i
	// Fast path: no escapes.
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			str := s.b[start:s.i]
			s.i++
			if !utf8.Valid(str) {
				return "", errors.New("is not valid UTF-8")
			}
			return string(str), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		s.i++
	}
	buf := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		// Copy the run up to the next quote, escape or control character.
		run := s.i
		for run < len(s.b) && s.b[run] != '"' && s.b[run] != '\\' && s.b[run] >= 0x20 {
			run++
		}
		buf = append(buf, s.b[s.i:run]...)
		s.i = run
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(buf) {
				return "", errors.New("is not valid UTF-8")
			}
			return string(buf), nil
		case c < 0x20:
			return "", fmt.Errorf("holds a raw control character at byte %d", s.i)
		}
		if s.i+1 >= len(s.b) {
			return "", errTruncated
		}
		esc := s.b[s.i+1]
		s.i += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				var r2 rune = utf8.RuneError
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, err = s.hex4(); err != nil {
						return "", err
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", fmt.Errorf("has an invalid escape \\%c", esc)
		}
	}
	return "", errTruncated
}

func (s *scanner) hex4() (rune, error) {
	if s.i+4 > len(s.b) {
		return 0, errTruncated
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 16)
	if err != nil {
		return 0, errors.New("has an invalid \\u escape")
	}
	s.i += 4
	return rune(v), nil
}

// hexInto reads a JSON string of 2·len(dst) lowercase hex digits into dst.
// The common spelling, without escapes, is decoded in place.
func (s *scanner) hexInto(dst []byte) error {
	s.ws()
	n := 2 * len(dst)
	if s.i+n+2 <= len(s.b) && s.b[s.i] == '"' && s.b[s.i+n+1] == '"' && decodeLowerHex(dst, s.b[s.i+1:s.i+1+n]) {
		s.i += n + 2
		return nil
	}
	str, err := s.string()
	if err != nil {
		return err
	}
	return parseHex(dst, []byte(str))
}

// hexValues maps lowercase hex digits to their values, anything else to 0xff.
var hexValues = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// decodeLowerHex decodes src, exactly 2·len(dst) lowercase hex digits.
func decodeLowerHex(dst, src []byte) bool {
	for i := range dst {
		hi, lo := hexValues[src[2*i]], hexValues[src[2*i+1]]
		if hi|lo == 0xff {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// uint reads a whole number from 0 in its one spelling: digits, no sign,
// fraction, exponent or leading zero.
func (s *scanner) uint() (uint64, error) {
	s.ws()
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	digits := s.b[start:s.i]
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E', '-', '+':
			return 0, errors.New("must be a whole number from 0 written without sign, fraction or exponent")
		case 'n':
			return 0, errors.New("is null")
		}
	}
	if len(digits) == 0 {
		return 0, errors.New("must be a whole number from 0")
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, errors.New("must not have leading zeros")
	}
	v, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, errors.New("is out of range")
	}
	return v, nil
}

// hexList reads a list of at most max hashes in hex.
func (s *scanner) hexList(max int, each func(Hash)) error {
	if err := s.expect('['); err != nil {
		if s.i < len(s.b) && s.b[s.i] == 'n' {
			return errors.New("is null")
		}
		return errors.New("must be a list")
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for i := 0; ; i++ {
		if i >= max {
			return fmt.Errorf("has more than %d entries", max)
		}
		var h Hash
		if err := s.hexInto(h[:]); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		each(h)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		case 0:
			return errTruncated
		default:
			return fmt.Errorf("want ',' or ']' at byte %d", s.i)
		}
	}
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
