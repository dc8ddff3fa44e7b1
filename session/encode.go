package session

import (
	"bytes"
	"encoding/json"

	"github.com/telenotary/telenotary/session/signalapi"
)

// encode writes a message as JSON without escaping <, > and & for HTML.
// The room encodes each message once, whatever the number of recipients.
func encode(m *signalapi.Message) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil { // a Message always encodes
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// encodeWithBundle encodes m (whose Bundle is unset) with bundle as its
// "bundle" member: the bundle's bytes go in as they are, neither checked
// nor compacted again, since the server made them (appendBundle). A nil
// bundle leaves the member out.
func encodeWithBundle(m *signalapi.Message, bundle []byte) []byte {
	return withMember(encode(m), "bundle", bundle)
}

// withMember appends the member name with a raw JSON value to the encoded
// object obj; a nil value leaves obj as it is. name must need no escaping.
func withMember(obj []byte, name string, raw []byte) []byte {
	if raw == nil {
		return obj
	}
	out := make([]byte, 0, len(obj)+len(name)+len(raw)+4)
	out = append(out, obj[:len(obj)-1]...) // without the closing brace
	if len(obj) > 2 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, name...)
	out = append(out, `":`...)
	out = append(out, raw...)
	return append(out, '}')
}
