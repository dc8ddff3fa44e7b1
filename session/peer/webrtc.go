package peer

import (
	"fmt"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/telenotary/telenotary/session/signalapi"
)

// iceServers are the configured servers and those the signalling server
// gave, in pion's form.
func iceServers(configured []webrtc.ICEServer, given []signalapi.ICEServer) []webrtc.ICEServer {
	out := append([]webrtc.ICEServer(nil), configured...)
	for _, s := range given {
		is := webrtc.ICEServer{URLs: s.URLs, Username: s.Username}
		if s.Credential != "" {
			is.Credential = s.Credential
		}
		out = append(out, is)
	}
	return out
}

// newPeerConnection makes the pion peer connection and wires its
// callbacks: local candidates go to the server, a remote data channel is
// taken, and the DTLS certificate seen is reported once connected.
func (p *Peer) newPeerConnection(servers []webrtc.ICEServer) error {
	var se webrtc.SettingEngine
	if p.cfg.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: servers, ICETransportPolicy: p.cfg.ICETransportPolicy})
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	p.pc = pc
	if p.cfg.Media {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fmt.Errorf("peer: %w", err)
			}
		}
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			// Read the media so pion's buffers do not fill; the read fails
			// once Close closes the peer connection.
			p.goOwned(func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := t.Read(buf); err != nil {
						return
					}
				}
			})
		})
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return // gathering is complete; the server needs no end marker
		}
		init := c.ToJSON()
		p.write(p.ctx, &signalapi.Message{Type: signalapi.TypeCandidate, Candidate: &signalapi.Candidate{
			Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment}})
	})
	pc.OnDataChannel(func(ch *webrtc.DataChannel) { p.setChannel(ch) })
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		p.log.DebugContext(p.ctx, "ICE state", "role", p.role, "state", s)
	})
	pc.SCTP().Transport().OnStateChange(func(s webrtc.DTLSTransportState) {
		p.log.DebugContext(p.ctx, "DTLS state", "role", p.role, "state", s)
		if s == webrtc.DTLSTransportStateConnected {
			// pion calls this holding the transport's lock, which
			// GetRemoteCertificate takes too.
			p.goOwned(p.reportFingerprint)
		}
	})
	return nil
}

// reportFingerprint tells the server which certificate the other side
// presented on the DTLS transport.
func (p *Peer) reportFingerprint() {
	der := p.pc.SCTP().Transport().GetRemoteCertificate()
	if len(der) == 0 {
		return
	}
	fp := signalapi.FingerprintOf(der)
	p.mu.Lock()
	p.sawPeer = &fp
	p.mu.Unlock()
	p.write(p.ctx, &signalapi.Message{Type: signalapi.TypeFingerprint, Fingerprint: &fp})
	if path := p.PathType(); path != "" {
		p.write(p.ctx, &signalapi.Message{Type: signalapi.TypePath, Path: path})
	}
}

func (p *Peer) setChannel(ch *webrtc.DataChannel) {
	p.mu.Lock()
	p.channel = ch
	p.mu.Unlock()
	ch.OnOpen(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		select {
		case <-p.open:
		default:
			close(p.open)
		}
	})
	ch.OnMessage(func(m webrtc.DataChannelMessage) {
		p.mu.Lock()
		f := p.onMessage
		p.mu.Unlock()
		if f != nil {
			f(m.Data)
		}
	})
}

// offer sends an offer (physician), restarting ICE after a reconnection.
func (p *Peer) offer(restart bool) {
	p.mu.Lock()
	p.offered = true
	p.mu.Unlock()
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.log.WarnContext(p.ctx, "cannot make an offer", "error", err)
		return
	}
	p.write(p.ctx, &signalapi.Message{Type: signalapi.TypeOffer, SDP: offer.SDP})
}

// answer answers a remote offer.
func (p *Peer) answer(sdp string) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		p.log.WarnContext(p.ctx, "remote offer refused", "error", err)
		return
	}
	p.flushCandidates()
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		p.log.WarnContext(p.ctx, "cannot answer", "error", err)
		return
	}
	p.write(p.ctx, &signalapi.Message{Type: signalapi.TypeAnswer, SDP: answer.SDP})
}

// answered takes the remote answer to the peer's offer.
func (p *Peer) answered(sdp string) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.log.WarnContext(p.ctx, "remote answer refused", "error", err)
		return
	}
	p.flushCandidates()
}

// addCandidate adds a remote candidate, or keeps it until the remote
// description is set.
func (p *Peer) addCandidate(c *signalapi.Candidate) {
	if c == nil || c.Candidate == "" {
		return
	}
	init := webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
	p.mu.Lock()
	if p.pc.RemoteDescription() == nil {
		p.pendingICE = append(p.pendingICE, init)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if err := p.pc.AddICECandidate(init); err != nil {
		p.log.DebugContext(p.ctx, "remote candidate refused", "error", err)
	}
}

func (p *Peer) flushCandidates() {
	p.mu.Lock()
	pending := p.pendingICE
	p.pendingICE = nil
	p.mu.Unlock()
	for _, c := range pending {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.DebugContext(p.ctx, "remote candidate refused", "error", err)
		}
	}
}
