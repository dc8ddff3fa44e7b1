package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"

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

// ticketRoom returns the room a ticket names and the ticket's hash. Its
// error is a fatal ticket_invalid for a string that is no ticket.
func ticketRoom(ticket string) (string, ticketHash, error) {
	room, secret, ok := strings.Cut(ticket, ".")
	if !ok || !signalapi.ValidID(room) || len(secret) != base64.RawURLEncoding.EncodedLen(32) {
		return "", ticketHash{}, signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "ticket is not a resume ticket: send the ticket of the last joined message as it came")
	}
	return room, sha256.Sum256([]byte(ticket)), nil
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
