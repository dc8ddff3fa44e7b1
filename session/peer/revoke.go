package peer

import (
	"context"
	"errors"
	"fmt"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// Revocation is a prescription's revocation the server announced
// (revoked): the receipt of the revocation's leaf, verified against the
// policy.
type Revocation struct {
	// Commitment is the revoked prescription's.
	Commitment notary.Commitment
	// Receipt is the revocation's receipt, Raw its JSON: a leaf of kind
	// revocation, commitment notary.RevocationCommitment(Commitment),
	// linked to the prescription.
	Receipt *notary.Receipt
	Raw     []byte
	// Result is the verification's result; Err why it failed (a receipt
	// that does not verify, or is not the revocation of Commitment).
	Result *notary.Result
	Err    error
}

type revokeResult struct {
	r   *Revocation
	err error
}

// Revocations delivers each revocation of a prescription of the session
// once, verified (or failed), as the server announces them to both
// participants. The channel holds one per prescription a session can
// have.
func (p *Peer) Revocations() <-chan Revocation { return p.revocations }

// Revoke revokes a prescription notarized in this consultation (physician
// only: the server refuses the patient's with forbidden), named by the
// commitment of its receipt, and waits for the verified receipt of the
// revocation, which both participants get. A prescription revoked before
// answers that revocation. The server's refusal is a *ServerError
// (forbidden, unknown_prescription, revoke_refused, room_ended,
// notary_unavailable). After the consultation, the app's backend revokes
// with the bundle (signalapi.Client.Revoke).
func (p *Peer) Revoke(ctx context.Context, c notary.Commitment) (*Revocation, error) {
	ch := make(chan revokeResult, 1)
	p.mu.Lock()
	if _, dup := p.revoking[c]; dup {
		p.mu.Unlock()
		return nil, fmt.Errorf("peer: the revocation of %s is already waiting", c)
	}
	p.revoking[c] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.revoking, c)
		p.mu.Unlock()
	}()
	if err := p.write(ctx, &signalapi.Message{Type: signalapi.TypeRevoke, Commitment: c.String()}); err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		return res.r, res.err
	case <-p.ended:
		return nil, fmt.Errorf("peer: the session ended before the revocation of %s: %s", c, p.endReason)
	case <-ctx.Done():
		return nil, fmt.Errorf("peer: waiting for the revocation of %s: %w", c, ctx.Err())
	}
}

// revokedMessage verifies a revoked message, publishes it once, and
// hands it to the Revoke waiting for it.
func (p *Peer) revokedMessage(m *signalapi.Message) {
	c, err := notary.ParseCommitment(m.Commitment)
	if err != nil {
		p.log.WarnContext(p.ctx, "revoked message without a valid commitment", "error", err)
		return
	}
	r := p.revocation(c, m.Receipt)
	p.mu.Lock()
	w := p.revoking[c]
	seen := p.revoked[c]
	p.revoked[c] = true
	p.mu.Unlock()
	if !seen { // published before Revoke returns it
		select {
		case p.revocations <- r:
		case <-p.ctx.Done():
		}
	}
	if w != nil {
		res := revokeResult{r: &r}
		if r.Err != nil {
			res.err = fmt.Errorf("peer: the revocation of %s does not verify: %w", c, r.Err)
		}
		select {
		case w <- res:
		default:
		}
	}
}

// revocation parses and verifies the receipt of the revocation of c.
func (p *Peer) revocation(c notary.Commitment, raw []byte) Revocation {
	r := Revocation{Commitment: c, Raw: raw}
	rc, err := notary.ParseReceipt(raw)
	if err != nil {
		r.Err = err
		return r
	}
	r.Receipt = rc
	if rc.Leaf.Kind != notary.KindRevocation || rc.Leaf.Link != c {
		r.Err = errors.New("the receipt is not of the prescription's revocation: " + rc.Leaf.Kind.String() + " linked to " + rc.Leaf.Link.String())
		return r
	}
	r.Result, r.Err = p.verifier.Verify(notary.Claim{Receipt: rc, Commitment: notary.RevocationCommitment(c)})
	return r
}
