package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ReadBody reads a request body of at most limit bytes; a longer one is
// ErrTooLarge.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %v", ErrBadRequest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: the body is larger than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// DecodeJSON decodes one JSON value from b into v, strictly: an unknown or
// repeated object member, a value of the wrong type, invalid UTF-8 or
// anything after the value is refused with a *FieldError that names the
// field as a path ("entries[3].kind"; "body" for the whole).
//
// It uses github.com/go-json-experiment/json, whose errors carry the JSON
// pointer of the mistake, so no error text is ever matched.
func DecodeJSON(b []byte, v any) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return Field("body", "is empty; a JSON object is required")
	}
	err := json.Unmarshal(b, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var fe *FieldError
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &fe): // from a type's own UnmarshalJSON
		return fe
	case errors.As(err, &se):
		field := fieldPath(se.JSONPointer)
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			return Field(field, "is not a field of this request")
		case errors.As(se.Err, &fe):
			return Field(joinPath(field, fe.Field), "%s", fe.Reason)
		case se.GoType != nil && se.JSONKind != 0:
			return Field(field, "must be %s, not %s", kindName(se.GoType.Kind().String()), jsonKindName(se.JSONKind))
		case se.Err != nil:
			return Field(field, "%v", se.Err)
		}
		return Field(field, "is not valid here")
	case errors.As(err, &syn):
		field := fieldPath(syn.JSONPointer)
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			return Field(field, "appears more than once")
		}
		if field != "body" {
			return Field("body", "is not valid JSON: %v at byte %d, in %s", syn.Err, syn.ByteOffset, field)
		}
		return Field("body", "is not valid JSON: %v at byte %d", syn.Err, syn.ByteOffset)
	}
	return Field("body", "%v", err)
}

// fieldPath spells a JSON pointer as a field path: /entries/3/kind is
// entries[3].kind; the empty pointer is "body".
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 64); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// joinPath appends an inner field path to an outer one.
func joinPath(outer, inner string) string {
	switch {
	case outer == "body":
		return inner
	case inner == "" || inner == "body":
		return outer
	}
	return outer + "." + inner
}

// kindName names a Go kind for people.
func kindName(k string) string {
	switch {
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	case strings.Contains(k, "int"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "slice", k == "array":
		return "an array"
	}
	return "an object"
}

// jsonKindName names a JSON kind for people.
func jsonKindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "true or false"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "another value"
}
