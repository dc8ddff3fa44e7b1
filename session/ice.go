package session

import (
	"crypto/hmac"
	"crypto/sha1" // the TURN REST convention's MAC, which coturn checks
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/telenotary/telenotary/session/signalapi"
)

// ICEConfig is the STUN and TURN servers the server gives each client in
// its joined message, so that a patient behind a NAT or a firewall that
// lets only a relay through still connects.
type ICEConfig struct {
	// URLs are stun:, stuns:, turn: and turns: URLs (RFC 7064, RFC 7065),
	// such as "stun:stun.example.org:3478" or
	// "turns:turn.example.org:443?transport=tcp".
	URLs []string
	// TURNSecret is the secret the TURN servers share with this server
	// (coturn's static-auth-secret with use-auth-secret): each client gets
	// a user name "<expiry>:<user>" and its HMAC-SHA1 under it. Required
	// with a turn: or turns: URL.
	TURNSecret []byte
	// CredentialTTL is how long a client's TURN credentials are valid;
	// 0 means the session's maximum length (Config.MaxSessionLength), so
	// that they outlive the consultation they were given for.
	CredentialTTL time.Duration
	// RelayOnly tells clients to connect through the TURN relays only
	// (iceTransportPolicy "relay"): neither participant learns the
	// other's IP address. It needs a turn: or turns: URL.
	RelayOnly bool
}

// Limits on the ICE configuration.
const (
	maxICEURLs       = 16
	maxICEURLLength  = 256
	minTURNSecretLen = 16
)

// Validate names the first URL or setting that cannot work.
func (c ICEConfig) Validate() error {
	if len(c.URLs) > maxICEURLs {
		return fmt.Errorf("URLs: %d, more than %d", len(c.URLs), maxICEURLs)
	}
	turn := false
	for _, u := range c.URLs {
		isTURN, err := checkICEURL(u)
		if err != nil {
			return fmt.Errorf("URLs: %q: %w", u, err)
		}
		turn = turn || isTURN
	}
	switch {
	case turn && len(c.TURNSecret) < minTURNSecretLen:
		return fmt.Errorf("TURNSecret has %d bytes; a turn: URL needs a secret of at least %d, the one its TURN server has", len(c.TURNSecret), minTURNSecretLen)
	case !turn && len(c.TURNSecret) > 0:
		return errors.New("TURNSecret is set but no URL is a turn: or turns: URL")
	case c.RelayOnly && !turn:
		return errors.New("RelayOnly needs a turn: or turns: URL: with no relay, no client would connect")
	case c.CredentialTTL < 0:
		return fmt.Errorf("CredentialTTL is %v; it must not be negative", c.CredentialTTL)
	}
	return nil
}

// checkICEURL checks a STUN or TURN URL and reports whether it is TURN.
func checkICEURL(u string) (turn bool, err error) {
	if len(u) > maxICEURLLength {
		return false, fmt.Errorf("longer than %d bytes", maxICEURLLength)
	}
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok {
		return false, errors.New("no scheme: write stun:, stuns:, turn: or turns: before the host")
	}
	switch scheme {
	case "stun", "stuns":
	case "turn", "turns":
		turn = true
	default:
		return false, fmt.Errorf("scheme %q is not stun, stuns, turn or turns", scheme)
	}
	if strings.HasPrefix(rest, "//") {
		return false, fmt.Errorf("an ICE URL has no \"//\": write %s:host:port", scheme)
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if !turn {
			return false, errors.New("a STUN URL takes no query")
		}
		if query != "transport=udp" && query != "transport=tcp" {
			return false, fmt.Errorf("query %q: the only one is transport=udp or transport=tcp", query)
		}
	}
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false, fmt.Errorf("port %q is not a port number", port)
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, " /@[]") {
		return false, fmt.Errorf("host %q is not a host name or an IP address", host)
	}
	return turn, nil
}

// iceServers are the servers a participant is given, with TURN
// credentials for user valid from now for the TTL.
func (c ICEConfig) iceServers(user string, now time.Time, ttl time.Duration) []signalapi.ICEServer {
	var stun, turn []string
	for _, u := range c.URLs {
		if strings.HasPrefix(u, "turn") {
			turn = append(turn, u)
		} else {
			stun = append(stun, u)
		}
	}
	var out []signalapi.ICEServer
	if len(stun) > 0 {
		out = append(out, signalapi.ICEServer{URLs: stun})
	}
	if len(turn) > 0 {
		name, password := TURNCredentials(c.TURNSecret, user, now.Add(ttl))
		out = append(out, signalapi.ICEServer{URLs: turn, Username: name, Credential: password})
	}
	return out
}

// transportPolicy is the joined message's ice_transport_policy.
func (c ICEConfig) transportPolicy() string {
	if c.RelayOnly {
		return "relay"
	}
	return ""
}

// TURNCredentials makes the TURN REST credentials of user, valid until
// expiry, under a TURN server's shared secret: the user name
// "<expiry>:<user>" and the base64 HMAC-SHA1 of it.
func TURNCredentials(secret []byte, user string, expiry time.Time) (username, credential string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
