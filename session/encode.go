package session

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/telenotary/telenotary/session/signalapi"
)

// encoders are reused JSON encoders, each with its buffer, so that a
// relayed message allocates only its own bytes: at thousands of messages a
// second, what a message allocates decides how often the collector runs.
var encoders = sync.Pool{New: func() any { return newPooledEncoder() }}

type pooledEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newPooledEncoder() *pooledEncoder {
	e := &pooledEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// maxPooledEncoder is the largest buffer an encoder goes back to the pool
// with: a bundle's buffer is not kept.
const maxPooledEncoder = 4 << 10

// encode writes a message as JSON without escaping <, > and & for HTML.
// The room encodes each message once, whatever the number of recipients.
func encode(m *signalapi.Message) []byte {
	return encodeValue(m)
}

// encodeValue is encode for any value that always encodes, such as a
// message type smaller than Message.
func encodeValue(v any) []byte {
	e := encoders.Get().(*pooledEncoder)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil { // our messages always encode
		panic(err)
	}
	out := bytes.Clone(bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'}))
	if e.buf.Cap() <= maxPooledEncoder {
		encoders.Put(e)
	}
	return out
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
