package notary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
)

// object is a JSON object split into its members, for strict decoding:
// unknown, duplicate and missing members are errors that name the member.
type object struct {
	what    string // "receipt", "bundle": the start of every error message
	members map[string]json.RawMessage
}

// parseObject splits data, which must be exactly one JSON object whose
// member names are all in allowed, without duplicates.
func parseObject(data []byte, what string, allowed ...string) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not JSON: %v", ErrMalformed, what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: %s must be a JSON object", ErrMalformed, what)
	}
	o := &object{what: what, members: make(map[string]json.RawMessage, len(allowed))}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not JSON: %v", ErrMalformed, what, err)
		}
		name, _ := tok.(string)
		if !slices.Contains(allowed, name) {
			return nil, fmt.Errorf("%w: %s has unknown field %q", ErrMalformed, what, name)
		}
		if _, dup := o.members[name]; dup {
			return nil, fmt.Errorf("%w: %s has field %q twice", ErrMalformed, what, name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: %s field %q is not JSON: %v", ErrMalformed, what, name, err)
		}
		o.members[name] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %s is not JSON: %v", ErrMalformed, what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s has data after its closing brace", ErrMalformed, what)
	}
	return o, nil
}

// has reports whether the member is present.
func (o *object) has(name string) bool { _, ok := o.members[name]; return ok }

// decode unmarshals a required member into v (whose UnmarshalText or
// UnmarshalJSON does the checking) and names the member in any error.
func (o *object) decode(name string, v any) error {
	raw, ok := o.members[name]
	if !ok {
		return fmt.Errorf("%w: %s field %q is missing", ErrMalformed, o.what, name)
	}
	if containsNull(raw) {
		return fmt.Errorf("%w: %s field %q is or holds null", ErrMalformed, o.what, name)
	}
	switch v.(type) {
	case *int, *int64, *uint64:
		// Whole numbers from 0 in one spelling: no sign, fraction,
		// exponent or leading zero.
		if !canonicalUint(raw) {
			return fmt.Errorf("%w: %s field %q must be a whole number from 0 written without sign, fraction, exponent or leading zeros, not %s", ErrMalformed, o.what, name, raw)
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: %s field %q must be %s, not %s", ErrMalformed, o.what, name, jsonKind(te.Type.Kind()), te.Value)
		}
		return fmt.Errorf("%w: %s field %q: %v", ErrMalformed, o.what, name, err)
	}
	return nil
}

func canonicalUint(raw []byte) bool {
	if len(raw) == 0 || len(raw) > 1 && raw[0] == '0' {
		return false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// containsNull reports whether a JSON value is or holds null, which
// json.Unmarshal would take as a second spelling of a zero value.
func containsNull(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if tok == nil {
			return true
		}
	}
}

// decodeOptional is decode for a member that may be absent.
func (o *object) decodeOptional(name string, v any) error {
	if !o.has(name) {
		return nil
	}
	return o.decode(name, v)
}

// jsonKind names the JSON value a Go kind decodes from.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String, reflect.Array:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8, reflect.Uint:
		return "a whole number from 0"
	default:
		return "a whole number"
	}
}
