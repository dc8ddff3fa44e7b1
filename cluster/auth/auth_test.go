package auth

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cluster/httpapi"
)

// TestParseTokens: a token file is refused, naming the line, for a bad
// role, a short token, a repeated token or a malformed line.
func TestParseTokens(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"admin 0123456789abcdef", "line 1: role \"admin\""},
		{"# c\nsubmitter short", "line 2: token shorter"},
		{"submitter 0123456789abcdef\noperator 0123456789abcdef", "line 2: token listed twice"},
		{"submitter", "line 1: want"},
		{"none 0123456789abcdef", "line 1: role \"none\""},
	} {
		if _, err := ParseTokens([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
}

// TestAuthorize: roles allow what they should, nothing more.
func TestAuthorize(t *testing.T) {
	tok, err := ParseTokens([]byte("submitter sub-0123456789abcdef\noperator op-0123456789abcdef\njoin join-0123456789abcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header string
		need   Role
		want   error
	}{
		{"Bearer sub-0123456789abcdef", RoleSubmitter, nil},
		{"bearer op-0123456789abcdef", RoleSubmitter, nil},
		{"Bearer op-0123456789abcdef", RoleOperator, nil},
		{"Bearer sub-0123456789abcdef", RoleOperator, httpapi.ErrForbidden},
		{"Bearer sub-0123456789abcdef", RoleJoiner, httpapi.ErrForbidden},
		{"Bearer op-0123456789abcdef", RoleJoiner, nil},
		{"Bearer join-0123456789abcdef", RoleJoiner, nil},
		{"Bearer join-0123456789abcdef", RoleSubmitter, httpapi.ErrForbidden},
		{"Bearer join-0123456789abcdef", RoleOperator, httpapi.ErrForbidden},
		{"Bearer sub-0123456789abcdeX", RoleSubmitter, httpapi.ErrUnauthorized},
		{"Basic sub-0123456789abcdef", RoleSubmitter, httpapi.ErrUnauthorized},
		{"", RoleSubmitter, httpapi.ErrUnauthorized},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if err := tok.Authorize(r, tc.need); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%q for %s: %v, want %v", tc.header, tc.need, err, tc.want)
		}
	}
	var none *Tokens
	if err := none.Authorize(httptest.NewRequest("POST", "/", nil), RoleSubmitter); !errors.Is(err, httpapi.ErrUnauthorized) {
		t.Errorf("nil tokens: %v", err)
	}
}
