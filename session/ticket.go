package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// A resume ticket lets a participant come back to its seat without its
// join token, which joins once. Every joined message carries a new one:
// the room's id, a dot, and 32 random bytes in base64url. The room keeps
// only the SHA-256 of the tickets of each seat (ticketPair), so the
// ticket is bound to the room, the role and the subject of that seat; it
// is valid while its seat's connection is open and for the grace window
// after it closes, and dies with the room: nothing of it survives a
// restart.

// ticketHash is the SHA-256 of a ticket.
type ticketHash [sha256.Size]byte

// newTicket returns a fresh ticket for a seat of room and its hash.
func newTicket(room string) (string, ticketHash) {
	var b [32]byte
	rand.Read(b[:])
	t := room + "." + base64.RawURLEncoding.EncodeToString(b[:])
	return t, sha256.Sum256([]byte(t))
}

// hashTicket is the SHA-256 of a ticket, all of it.
func hashTicket(t string) ticketHash { return sha256.Sum256([]byte(t)) }

// ticketRoom returns the room a ticket names, the ticket's hash and its
// sealed part ("" for none). Its error is a fatal ticket_invalid for a
// string that is no ticket.
func ticketRoom(ticket string) (string, ticketHash, string, error) {
	room, rest, ok := strings.Cut(ticket, ".")
	secret, sealed, _ := strings.Cut(rest, ".")
	if !ok || !signalapi.ValidID(room) || len(secret) != base64.RawURLEncoding.EncodedLen(32) {
		return "", ticketHash{}, "", signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "ticket is not a resume ticket: send the ticket of the last joined message as it came")
	}
	return room, hashTicket(ticket), sealed, nil
}

// In a group of instances (group.go) a ticket has a third part: its seat,
// sealed (AES-256-GCM, under a key derived from the token key the group
// shares, the room and secret as associated data), so that the instance
// that takes a room over when its own went away can seat the participant
// without having seen the room, and nobody else can read or make one. It
// is valid for TicketLife after it was issued; the room sends a fresh
// ticket to each connected participant every ticketRefresh, so that the
// ticket of a room that ended soon opens nothing anywhere.

// ticketSeat is the sealed part of a ticket.
type ticketSeat struct {
	Instance string         `json:"i"`            // the instance that issued it
	Epoch    int64          `json:"e"`            // that instance's start (Unix seconds)
	Expires  int64          `json:"x"`            // the ticket's end (Unix seconds)
	Role     signalapi.Role `json:"r"`            // the seat
	Subject  string         `json:"s"`            // its participant
	Session  string         `json:"ses"`          // the room's session when it was issued
	RoomEnds int64          `json:"re"`           // the room's expiry (Unix seconds)
	Started  int64          `json:"st,omitempty"` // the session's start, Unix milliseconds, once started
	// StartCommitment is the session-start record's commitment, once
	// started: the end record of an interrupted session links to it.
	StartCommitment *notary.Commitment `json:"sc,omitempty"`
	// Patient, Physician and Salt are the room's binding (binding.go).
	Patient   string       `json:"bp,omitempty"`
	Physician string       `json:"bd,omitempty"`
	Salt      *notary.Salt `json:"bs,omitempty"`
}

// ticketSealer seals and opens tickets' seats.
type ticketSealer struct{ aead cipher.AEAD }

func newTicketSealer(k *TokenKey) *ticketSealer {
	key := sha256.Sum256(append([]byte("telenotary resume ticket seal v1\x00"), k.key...))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &ticketSealer{aead: aead}
}

// seal returns ticket with seat sealed onto it.
func (t *ticketSealer) seal(ticket string, seat *ticketSeat) string {
	plain, err := json.Marshal(seat)
	if err != nil {
		panic(err) // a seat always encodes
	}
	nonce := make([]byte, t.aead.NonceSize(), t.aead.NonceSize()+len(plain)+t.aead.Overhead())
	rand.Read(nonce)
	sealed := t.aead.Seal(nonce, nonce, plain, []byte(ticket))
	return ticket + "." + base64.RawURLEncoding.EncodeToString(sealed)
}

// open returns the seat sealed in a ticket, nil for a ticket without one;
// its error is a fatal ticket_invalid.
func (t *ticketSealer) open(ticket, sealed string, now time.Time) (*ticketSeat, error) {
	if sealed == "" {
		return nil, nil
	}
	bad := func(why string) error {
		return signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "ticket's sealed part %s: send the ticket of the last joined or ticket message as it came", why)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sealed)
	if err != nil || len(raw) < t.aead.NonceSize()+t.aead.Overhead() {
		return nil, bad("is not base64url of a sealed seat")
	}
	n := t.aead.NonceSize()
	plain, err := t.aead.Open(nil, raw[:n], raw[n:], []byte(strings.TrimSuffix(ticket, "."+sealed)))
	if err != nil {
		return nil, bad("was not sealed by this group (another token key?) or was altered")
	}
	var seat ticketSeat
	if err := json.Unmarshal(plain, &seat); err != nil || !seat.Role.Valid() || !signalapi.ValidID(seat.Subject) || !signalapi.ValidID(seat.Session) {
		return nil, bad("does not name a seat")
	}
	if !now.Before(time.Unix(seat.Expires, 0)) {
		return nil, signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "this resume ticket expired at %s (a connected participant gets a new one every %s); ask the app's backend for a new token",
			time.Unix(seat.Expires, 0).UTC().Format(time.RFC3339), ticketRefresh)
	}
	return &seat, nil
}

// ticketPair is what a seat keeps of its tickets: the last one handed
// out, and the one presented to get it, which stays valid until the last
// is used, so that a client whose joined message was lost on the way can
// still come back with the ticket it holds.
type ticketPair struct {
	last, used ticketHash
	hasUsed    bool
	voided     bool // the participant was removed: no ticket seats it
}

// void makes every ticket of the seat so far useless; a new token seats
// the next participant, with tickets of its own.
func (p *ticketPair) void() { *p = ticketPair{voided: true} }

// matches reports whether h is one of the seat's tickets.
func (p *ticketPair) matches(h ticketHash) bool {
	if p.voided {
		return false
	}
	if subtle.ConstantTimeCompare(p.last[:], h[:]) == 1 {
		return true
	}
	return p.hasUsed && subtle.ConstantTimeCompare(p.used[:], h[:]) == 1
}

// rotate records a new ticket handed out after a join: with a token
// (presented nil) every earlier ticket dies; with a ticket, the one
// presented stays valid until the new one is used.
func (p *ticketPair) rotate(next ticketHash, presented *ticketHash) {
	if presented == nil {
		*p = ticketPair{last: next}
		return
	}
	*p = ticketPair{last: next, used: *presented, hasUsed: true}
}
