package session

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/telenotary/telenotary/session/signalapi"
)

// CheckSDP parses an offer or answer with pion's SDP parser and returns its
// DTLS fingerprint. The SDP must be at most signalapi.MaxSDPSize bytes,
// have at least one media section, and carry sha-256 fingerprints (at
// session level or on each media section) that all agree; fingerprints of
// other hash functions are ignored.
func CheckSDP(text string) (signalapi.Fingerprint, error) {
	var none signalapi.Fingerprint
	if len(text) > signalapi.MaxSDPSize {
		return none, fmt.Errorf("sdp is %d bytes, more than %d", len(text), signalapi.MaxSDPSize)
	}
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(text); err != nil {
		return none, fmt.Errorf("sdp does not parse: %w", err)
	}
	if len(desc.MediaDescriptions) == 0 {
		return none, fmt.Errorf("sdp has no media section (m=)")
	}
	var found signalapi.Fingerprint
	seen := false
	check := func(attrs []sdp.Attribute, where string) (bool, error) {
		any := false
		for _, a := range attrs {
			if a.Key != "fingerprint" {
				continue
			}
			alg, _, _ := strings.Cut(a.Value, " ")
			if !strings.EqualFold(alg, "sha-256") {
				continue
			}
			f, err := signalapi.ParseFingerprint(a.Value)
			if err != nil {
				return false, fmt.Errorf("%s: a=fingerprint: %w", where, err)
			}
			if seen && f != found {
				return false, fmt.Errorf("%s: a=fingerprint differs from an earlier one", where)
			}
			found, seen, any = f, true, true
		}
		return any, nil
	}
	sessionLevel, err := check(desc.Attributes, "session")
	if err != nil {
		return none, err
	}
	for i, m := range desc.MediaDescriptions {
		has, err := check(m.Attributes, fmt.Sprintf("media section %d (%s)", i+1, m.MediaName.Media))
		if err != nil {
			return none, err
		}
		if !has && !sessionLevel {
			return none, fmt.Errorf("media section %d (%s) has no sha-256 a=fingerprint", i+1, m.MediaName.Media)
		}
	}
	return found, nil
}
