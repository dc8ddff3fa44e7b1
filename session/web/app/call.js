// Call is the peer-to-peer side of a consultation: one RTCPeerConnection
// with the patient's and the physician's audio and video and a data channel
// ("consultation") for chat. The physician offers; the patient answers.
//
// Negotiation (docs: session/protocol.go):
//   - the physician offers once it has joined and the patient is there
//     (joined.peer_present, or peer-joined);
//   - when the patient comes back (peer-joined) or the physician's own
//     connection to the server was restored, a physician whose connection
//     has been negotiated before restarts ICE (createOffer({iceRestart:true}));
//   - remote ICE candidates that arrive before the remote description are
//     kept and added after it;
//   - a side that reloaded has a new DTLS certificate: the patient starts a
//     new peer connection when an offer announces another certificate, the
//     physician when the answer to its restart cannot be applied.
//
// After DTLS connects, the call hashes the certificate its transport
// actually received from the other side (fingerprint event), so the server
// can compare it with the fingerprint the other side's SDP announced.

/** The data channel's label. */
export const CHANNEL = 'consultation';

/**
 * Call events:
 *   "state"       detail: the call's state snapshot (see snapshot())
 *   "fingerprint" detail: "sha-256 AB:CD:..." of the remote DTLS certificate
 *   "chat"        detail: {from: "peer", text, time}
 *   "track"       detail: the remote MediaStream
 *   "log"         detail: a sentence for the page's event log
 *   "failure"     detail: {code, message}: something the user should know
 */
export class Call extends EventTarget {
  #role;
  #send;
  #stream;
  #iceServers;
  #iceTransportPolicy = 'all';
  #loopback;
  #pc = null;
  #channel = null;
  #pending = []; // remote candidates waiting for the remote description
  #queue = Promise.resolve(); // signalling steps, one at a time
  #statsTimer = 0;
  #closed = false;
  #remoteStream = null;
  #certificate = null;

  peerPresent = false;
  connected = false; // the data channel is open
  signalingState = 'new';
  iceState = 'new';
  connectionState = 'new';
  dtlsState = 'new';
  localFingerprint = ''; // announced by our SDP
  remoteSdpFingerprint = ''; // announced by the other side's SDP
  peerFingerprint = ''; // what our DTLS transport received
  selectedPair = null;
  negotiations = 0; // offers (physician) or answers (patient) sent
  restarts = 0; // ICE restarts the physician offered

  /**
   * @param {object} o
   * @param {"patient"|"physician"} o.role
   * @param {(msg: object) => boolean} o.send sends a protocol message
   * @param {MediaStream|null} o.stream the local camera and microphone
   * @param {RTCIceServer[]} o.iceServers STUN and TURN servers
   * @param {boolean} o.loopback exchange only loopback candidates (127.0.0.0/8,
   *   ::1): tests and demos on one machine
   */
  constructor({ role, send, stream = null, iceServers = [], loopback = false }) {
    super();
    this.#role = role;
    this.#send = send;
    this.#stream = stream;
    this.#iceServers = iceServers;
    this.#loopback = loopback;
  }

  get offerer() {
    return this.#role === 'physician';
  }

  snapshot() {
    return {
      peerPresent: this.peerPresent,
      connected: this.connected,
      signalingState: this.signalingState,
      iceState: this.iceState,
      connectionState: this.connectionState,
      dtlsState: this.dtlsState,
      localFingerprint: this.localFingerprint,
      remoteSdpFingerprint: this.remoteSdpFingerprint,
      peerFingerprint: this.peerFingerprint,
      selectedPair: this.selectedPair,
      negotiations: this.negotiations,
      restarts: this.restarts,
    };
  }

  // --- what the server says -------------------------------------------

  /** joined handles the server's joined message (also after a reconnect). */
  joined(msg) {
    if (Array.isArray(msg.ice_servers) && msg.ice_servers.length > 0) {
      // The server's STUN and TURN servers, with TURN credentials fresh
      // for this join: a later ICE restart uses them too.
      this.#iceServers = msg.ice_servers;
      // "relay": the server asks that neither side learn the other's address.
      this.#iceTransportPolicy = msg.ice_transport_policy === 'relay' ? 'relay' : 'all';
      if (this.#pc) {
        try {
          this.#pc.setConfiguration({
            ...this.#pc.getConfiguration(), iceServers: this.#iceServers, iceTransportPolicy: this.#iceTransportPolicy,
          });
        } catch (e) {
          this.#log(`kept the earlier ICE servers: ${e.message}`);
        }
      }
    }
    this.peerPresent = msg.peer_present === true;
    this.#changed();
    if (this.offerer && this.peerPresent) {
      this.#run(() => this.#offer());
    }
  }

  /** peerJoined handles peer-joined: the other side joined or came back. */
  peerJoined(msg) {
    this.peerPresent = true;
    this.#log(msg.resumed ? `the ${msg.role} is back` : `the ${msg.role} joined`);
    this.#changed();
    if (this.offerer) {
      this.#run(() => this.#offer());
    }
  }

  /** peerLeft handles peer-left: the other side's connection dropped. */
  peerLeft() {
    this.peerPresent = false;
    this.#changed();
  }

  /** signal handles a relayed offer, answer or candidate. */
  signal(msg) {
    switch (msg.type) {
      case 'offer':
        this.#run(() => this.#onOffer(msg.sdp));
        break;
      case 'answer':
        this.#run(() => this.#onAnswer(msg.sdp));
        break;
      case 'candidate':
        this.#run(() => this.#onCandidate(msg.candidate));
        break;
    }
  }

  // --- what the user does ---------------------------------------------

  /** sendChat sends a chat line on the data channel; false if it is closed. */
  sendChat(text) {
    if (!this.#channel || this.#channel.readyState !== 'open') return false;
    this.#channel.send(JSON.stringify({ type: 'chat', text }));
    return true;
  }

  /** close ends the call: no more negotiation, media stopped. */
  close() {
    this.#closed = true;
    this.#teardown();
    if (this.#stream) {
      for (const t of this.#stream.getTracks()) t.stop();
    }
    this.#changed();
  }

  // --- negotiation ----------------------------------------------------

  // #run queues a signalling step after the ones before it, so that an
  // answer or a candidate is never applied while an offer is half done.
  #run(step) {
    this.#queue = this.#queue.then(() => (this.#closed ? undefined : step())).catch((err) => {
      this.#fail('webrtc', `negotiation failed: ${err && err.message ? err.message : err}`);
    });
  }

  #offer() {
    if (this.#closed || !this.peerPresent) return Promise.resolve();
    return this.#makeOffer(false);
  }

  async #makeOffer(fresh) {
    if (fresh) this.#teardown();
    const pc = this.#pc ?? (await this.#create());
    if (pc.signalingState === 'have-local-offer') {
      // The offer was never answered (the patient left before it did).
      await pc.setLocalDescription({ type: 'rollback' });
    }
    const restart = pc.currentRemoteDescription !== null;
    const offer = await pc.createOffer(restart ? { iceRestart: true } : {});
    await pc.setLocalDescription(offer);
    if (restart) this.restarts++;
    this.negotiations++;
    this.localFingerprint = sdpFingerprint(pc.localDescription.sdp);
    this.#log(restart ? 'sent an offer that restarts ICE' : 'sent an offer');
    this.#send({ type: 'offer', sdp: this.#outgoing(pc.localDescription.sdp) });
    this.#changed();
  }

  async #onAnswer(sdp) {
    const pc = this.#pc;
    if (!this.offerer || !pc || pc.signalingState !== 'have-local-offer') {
      this.#log('ignored an answer to no offer');
      return;
    }
    const current = pc.currentRemoteDescription;
    if (current && sdpSession(current.sdp) !== sdpSession(sdp)) {
      // The patient reloaded the page: its new peer connection cannot
      // continue this one's DTLS association. Start anew.
      this.#log('the patient has a new connection; starting a new one');
      await this.#makeOffer(true);
      return;
    }
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (err) {
      // A patient who reloaded the page answers with a new certificate,
      // which an established connection cannot take: start anew.
      this.#log(`the answer does not fit this connection (${err.message}); starting a new one`);
      await this.#makeOffer(true);
      return;
    }
    this.remoteSdpFingerprint = sdpFingerprint(sdp);
    this.#watchTransport(pc);
    await this.#addPending();
    this.#changed();
  }

  async #onOffer(sdp) {
    if (this.offerer) {
      this.#log('ignored an offer: the physician makes the offers');
      return;
    }
    const current = this.#pc && this.#pc.currentRemoteDescription;
    if (current && sdpSession(current.sdp) !== sdpSession(sdp)) {
      // The physician reloaded (or started anew): another peer
      // connection, which this one cannot continue.
      this.#log('the physician has a new connection; starting a new one');
      this.#teardown();
    }
    let pc = this.#pc ?? (await this.#create());
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp });
    } catch (err) {
      this.#log(`the offer does not fit this connection (${err.message}); starting a new one`);
      this.#teardown();
      pc = await this.#create();
      await pc.setRemoteDescription({ type: 'offer', sdp });
    }
    this.remoteSdpFingerprint = sdpFingerprint(sdp);
    this.#watchTransport(pc);
    await this.#addPending();
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.negotiations++;
    this.localFingerprint = sdpFingerprint(pc.localDescription.sdp);
    this.#log('sent an answer');
    this.#send({ type: 'answer', sdp: this.#outgoing(pc.localDescription.sdp) });
    this.#changed();
  }

  // #outgoing is the SDP to send: in loopback mode without the candidates
  // of other interfaces (with trickle ICE it rarely has any).
  #outgoing(sdp) {
    if (!this.#loopback) return sdp;
    return sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:') || isLoopback(l.slice(2))).join('\r\n');
  }

  async #onCandidate(c) {
    if (!c || typeof c !== 'object') return;
    if (this.#loopback && c.candidate && !isLoopback(c.candidate)) return;
    if (!this.#pc || !this.#pc.remoteDescription) {
      this.#pending.push(c);
      return;
    }
    await this.#addCandidate(this.#pc, c);
  }

  async #addPending() {
    const pending = this.#pending;
    this.#pending = [];
    for (const c of pending) {
      await this.#addCandidate(this.#pc, c);
    }
  }

  async #addCandidate(pc, c) {
    const init = { candidate: c.candidate ?? '' };
    if (c.sdpMid != null) init.sdpMid = c.sdpMid;
    if (c.sdpMLineIndex != null) init.sdpMLineIndex = c.sdpMLineIndex;
    if (c.usernameFragment != null) init.usernameFragment = c.usernameFragment;
    if (init.candidate === '' && init.sdpMid === undefined && init.sdpMLineIndex === undefined) {
      init.sdpMLineIndex = 0; // end of candidates for the bundle
    }
    try {
      await pc.addIceCandidate(init);
    } catch (err) {
      // A candidate of an earlier ICE generation, or one the browser does
      // not take: the others suffice.
      this.#log(`ignored a candidate: ${err.message}`);
    }
  }

  // --- the peer connection --------------------------------------------

  async #create() {
    // One certificate for the page's whole call, so that a new peer
    // connection (after the other side reloaded) keeps our fingerprint.
    this.#certificate ??= await RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' });
    const pc = new RTCPeerConnection({
      iceServers: this.#iceServers, iceTransportPolicy: this.#iceTransportPolicy, bundlePolicy: 'max-bundle',
      certificates: [this.#certificate],
    });
    this.#pc = pc;
    const tracks = this.#stream ? this.#stream.getTracks() : [];
    for (const t of tracks) pc.addTrack(t, this.#stream);
    if (this.offerer) {
      // Receive the patient's audio and video even without our own.
      for (const kind of ['audio', 'video']) {
        if (!tracks.some((t) => t.kind === kind)) pc.addTransceiver(kind, { direction: 'recvonly' });
      }
      this.#useChannel(pc.createDataChannel(CHANNEL, { ordered: true }));
    } else {
      pc.ondatachannel = (ev) => {
        if (pc === this.#pc && ev.channel.label === CHANNEL) this.#useChannel(ev.channel);
      };
    }
    pc.onicecandidate = (ev) => {
      if (pc !== this.#pc || !this.peerPresent) return;
      // A null candidate ends the candidates: sent as an empty line.
      const c = ev.candidate ? ev.candidate.toJSON() : { candidate: '' };
      if (this.#loopback && c.candidate && !isLoopback(c.candidate)) return;
      const init = { candidate: c.candidate ?? '' };
      if (c.sdpMid != null) init.sdpMid = c.sdpMid;
      if (c.sdpMLineIndex != null) init.sdpMLineIndex = c.sdpMLineIndex;
      if (c.usernameFragment != null) init.usernameFragment = c.usernameFragment;
      this.#send({ type: 'candidate', candidate: init });
    };
    pc.ontrack = (ev) => {
      if (pc !== this.#pc) return;
      if (!this.#remoteStream) this.#remoteStream = new MediaStream();
      const stream = ev.streams[0] ?? this.#remoteStream;
      if (!ev.streams[0]) this.#remoteStream.addTrack(ev.track);
      this.dispatchEvent(new CustomEvent('track', { detail: stream }));
    };
    pc.onsignalingstatechange = () => {
      if (pc !== this.#pc) return;
      this.signalingState = pc.signalingState;
      this.#changed();
    };
    pc.oniceconnectionstatechange = () => {
      if (pc !== this.#pc) return;
      this.iceState = pc.iceConnectionState;
      this.#log(`ICE ${this.iceState}`);
      this.#changed();
      this.#readStats(pc);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.#pc) return;
      this.connectionState = pc.connectionState;
      this.#changed();
      this.#checkTransport(pc);
    };
    clearInterval(this.#statsTimer);
    this.#statsTimer = setInterval(() => this.#readStats(pc), 1000);
    return pc;
  }

  #teardown() {
    clearInterval(this.#statsTimer);
    if (this.#channel) {
      this.#channel.onopen = this.#channel.onclose = this.#channel.onmessage = null;
      this.#channel = null;
    }
    if (this.#pc) {
      this.#pc.close();
      this.#pc = null;
    }
    this.#pending = [];
    this.#remoteStream = null;
    Object.assign(this, {
      connected: false, signalingState: 'new', iceState: 'new', connectionState: 'new', dtlsState: 'new',
      localFingerprint: '', remoteSdpFingerprint: '', peerFingerprint: '', selectedPair: null,
    });
  }

  #useChannel(ch) {
    this.#channel = ch;
    ch.onopen = () => {
      if (ch !== this.#channel) return;
      this.connected = true;
      this.#log('the chat channel is open');
      this.#changed();
    };
    ch.onclose = () => {
      if (ch !== this.#channel) return;
      this.connected = false;
      this.#log('the chat channel closed');
      this.#changed();
    };
    ch.binaryType = 'arraybuffer';
    ch.onmessage = (ev) => {
      if (ch !== this.#channel) return;
      let text = ev.data;
      if (text instanceof ArrayBuffer) {
        // Some SDKs send text as binary messages: take it if it is UTF-8.
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(text);
        } catch {
          return;
        }
      }
      if (typeof text !== 'string') return;
      try {
        const m = JSON.parse(text);
        if (m && m.type === 'chat' && typeof m.text === 'string') text = m.text;
        else if (m && typeof m.type === 'string') return; // a message type this page does not know
      } catch {
        // plain text
      }
      this.dispatchEvent(new CustomEvent('chat', { detail: { from: 'peer', text, time: new Date() } }));
    };
  }

  // #watchTransport follows the DTLS transport once the remote description
  // made it (with max-bundle, one transport carries media and data).
  #watchTransport(pc) {
    this.#checkTransport(pc);
  }

  // #checkTransport reads the state of the transport the connection uses
  // now and follows its changes. The transport found may not be the one
  // found before: until the answer settles bundling, a receiver's transport
  // can stand in for the one that stays, and Chromium may report the
  // connection connected before the transport object says so.
  async #checkTransport(pc) {
    if (pc !== this.#pc) return;
    const t = dtlsTransportOf(pc);
    if (!t) return;
    if (!t.onstatechange) t.onstatechange = () => this.#checkTransport(pc);
    if (this.dtlsState !== t.state) {
      this.dtlsState = t.state;
      this.#log(`DTLS ${t.state}`);
      this.#changed();
    }
    if (t.state !== 'connected') return;
    const certs = t.getRemoteCertificates();
    if (!certs.length) return;
    const fp = await certificateFingerprint(certs[0]);
    if (pc !== this.#pc || fp === this.peerFingerprint) return;
    this.peerFingerprint = fp;
    if (this.remoteSdpFingerprint && fp !== this.remoteSdpFingerprint) {
      this.#fail('fingerprint_mismatch', 'the certificate received over DTLS is not the one the other side announced: the connection may be intercepted');
    }
    this.#changed();
    this.dispatchEvent(new CustomEvent('fingerprint', { detail: fp }));
  }

  async #readStats(pc) {
    if (pc !== this.#pc || pc.connectionState === 'closed') return;
    let pair = null;
    try {
      pair = selectedPair(await pc.getStats());
    } catch {
      return; // the connection closed meanwhile
    }
    if (pc !== this.#pc) return;
    this.#checkTransport(pc);
    if (JSON.stringify(pair) !== JSON.stringify(this.selectedPair)) {
      this.selectedPair = pair;
      if (pair) this.#log(`media path: ${describePair(pair)}`);
      this.#changed();
    }
  }

  #changed() {
    this.dispatchEvent(new CustomEvent('state', { detail: this.snapshot() }));
  }

  #log(text) {
    this.dispatchEvent(new CustomEvent('log', { detail: text }));
  }

  #fail(code, message) {
    this.dispatchEvent(new CustomEvent('failure', { detail: { code, message } }));
  }
}

// isLoopback reports whether an ICE candidate line ("candidate:F C proto
// priority address port typ ...") has a loopback address.
function isLoopback(line) {
  const address = line.split(' ')[4] || '';
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

function dtlsTransportOf(pc) {
  if (pc.sctp && pc.sctp.transport) return pc.sctp.transport;
  for (const s of [...pc.getSenders(), ...pc.getReceivers()]) {
    if (s.transport) return s.transport;
  }
  return null;
}

/** sdpFingerprint returns the sha-256 a=fingerprint of an SDP, upper case. */
export function sdpFingerprint(sdp) {
  const m = /^a=fingerprint:sha-256 ([0-9A-Fa-f:]+)\s*$/m.exec(sdp || '');
  return m ? `sha-256 ${m[1].toUpperCase()}` : '';
}

/** sdpSession returns the session id of an SDP's o= line: one per peer connection. */
export function sdpSession(sdp) {
  const m = /^o=\S+ (\S+) /m.exec(sdp || '');
  return m ? m[1] : '';
}

/** certificateFingerprint hashes a DER certificate as SDP writes it. */
export async function certificateFingerprint(der) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', der));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0').toUpperCase());
  return `sha-256 ${hex.join(':')}`;
}

const CANDIDATE_TYPES = { host: 'host', srflx: 'server-reflexive', prflx: 'peer-reflexive', relay: 'relayed' };

/**
 * describeCandidate names one side of a candidate pair for people:
 * "127.0.0.1:50000 (host)". A peer-reflexive candidate's address is hidden
 * until the other side's candidate arrives through the server; it is then
 * "peer-reflexive (address not yet known)", not an empty address.
 */
export function describeCandidate(c) {
  if (!c) return 'unknown';
  if (!c.address) return `${CANDIDATE_TYPES[c.type] ?? c.type ?? 'a candidate'} (address not yet known)`;
  return `${c.address}:${c.port} (${c.type})`;
}

/** describePair names a selected candidate pair: "local ⇄ remote". */
export function describePair(p) {
  return `${describeCandidate(p.local)} ⇄ ${describeCandidate(p.remote)}`;
}

/**
 * selectedPair finds the candidate pair the ICE transport selected in a
 * stats report: {local: {address, port, type, protocol}, remote: {...}}, or
 * null before one is selected.
 */
export function selectedPair(report) {
  let pair = null;
  for (const s of report.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      pair = report.get(s.selectedCandidatePairId);
      break;
    }
  }
  if (!pair) {
    for (const s of report.values()) {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        pair = s;
        break;
      }
    }
  }
  if (!pair) return null;
  const side = (id) => {
    const c = report.get(id);
    if (!c) return null;
    return { address: c.address ?? c.ip ?? '', port: c.port, type: c.candidateType, protocol: c.protocol };
  };
  const local = side(pair.localCandidateId);
  const remote = side(pair.remoteCandidateId);
  return local && remote ? { local, remote } : null;
}
