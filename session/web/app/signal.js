// Signal is the page's WebSocket to the signalling server (/v1/signal): it
// joins with the room token, hands every server message on, and when the
// connection drops it connects again and rejoins with the resume ticket of
// its last "joined" message: a token joins once, so that a leaked link
// cannot take the seat. The server keeps the participant's seat for its
// grace window (peer-left says how long), so a short network outage does
// not end the consultation. The ticket is kept in sessionStorage, for this
// tab and this token only, so that a reload of the page comes back to the
// seat too.

// Error codes after which joining again cannot succeed: the page stops.
export const FATAL_CODES = new Set([
  'token_invalid', 'token_expired', 'token_used', 'ticket_invalid', 'wrong_room', 'room_full', 'room_ended',
  'replaced',
]);

// Codes after which the kept ticket is of no more use.
const DROP_TICKET = new Set(['ticket_invalid', 'room_ended', 'token_expired', 'token_invalid', 'wrong_room']);

const TICKET_PREFIX = 'telenotary.ticket:';

/** keptTicket returns the resume ticket kept in this tab for a token, or "". */
export function keptTicket(token) {
  try {
    return sessionStorage.getItem(TICKET_PREFIX + token) || '';
  } catch {
    return ''; // storage disabled: the page still works until it is reloaded
  }
}

function keepTicket(token, ticket) {
  try {
    if (ticket) {
      sessionStorage.setItem(TICKET_PREFIX + token, ticket);
    } else {
      sessionStorage.removeItem(TICKET_PREFIX + token);
    }
  } catch {
    // storage disabled or full: the ticket stays in memory
  }
}

const MIN_DELAY = 250; // ms before the first reconnection
const MAX_DELAY = 5000; // ms between reconnections at most

/** signalURL returns the WebSocket URL of the server that served the page. */
export function signalURL(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/v1/signal`;
}

/**
 * Signal events:
 *   "state"   detail: "connecting" | "joined" | "reconnecting" | "closed"
 *   "message" detail: a server message (an object with a "type"; its
 *             non-enumerable "raw" property is the message's text)
 *   "closed"  detail: {code, reason, error}: the page will not reconnect
 */
export class Signal extends EventTarget {
  #url;
  #token;
  #room;
  #ticket; // the resume ticket of the last "joined", or ""
  #ws = null;
  #attempt = 0;
  #timer = 0;
  #stopped = false;
  #ended = false;
  #fatal = null; // the fatal error message that ended the connection
  state = 'idle';

  constructor(url, token, room) {
    super();
    this.#url = url;
    this.#token = token;
    this.#room = room;
    this.#ticket = keptTicket(token);
  }


  /** start opens the connection and joins. */
  start() {
    this.#connect();
  }

  /** joined reports whether the connection is open and joined. */
  get joined() {
    return this.state === 'joined';
  }

  /** send sends a message if joined and returns whether it did. */
  send(msg) {
    if (!this.joined || !this.#ws || this.#ws.readyState !== WebSocket.OPEN) {
      return false;
    }
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  /** stop closes the connection for good. */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#ws) {
      this.#ws.close(1000, 'page closed');
    }
    this.#setState('closed');
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }

  #connect() {
    this.#setState(this.#attempt === 0 ? 'connecting' : 'reconnecting');
    let ws;
    try {
      ws = new WebSocket(this.#url);
    } catch (err) {
      this.#finish({ code: 0, reason: String(err), error: null });
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      // The token joins once; after that the seat is ours by its ticket.
      const join = this.#ticket ? { type: 'join', ticket: this.#ticket } : { type: 'join', token: this.#token };
      if (this.#room) join.room = this.#room;
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.#ws || typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // the server only sends JSON; ignore anything else
      }
      if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') return;
      // The text as received, for bundles that must keep their bytes.
      Object.defineProperty(msg, 'raw', { value: ev.data, enumerable: false });
      if (msg.type === 'joined') {
        this.#attempt = 0;
        if (typeof msg.ticket === 'string' && msg.ticket) {
          this.#ticket = msg.ticket;
          keepTicket(this.#token, msg.ticket);
        }
        this.#setState('joined');
      } else if (msg.type === 'ticket') {
        // A fresh ticket replaces the last (several instances: its sealed
        // part expires, so that an ended room's ticket soon opens nothing).
        if (typeof msg.ticket === 'string' && msg.ticket) {
          this.#ticket = msg.ticket;
          keepTicket(this.#token, msg.ticket);
        }
        return;
      } else if (msg.type === 'error' && FATAL_CODES.has(msg.code)) {
        this.#fatal = msg;
        if (DROP_TICKET.has(msg.code)) this.#dropTicket();
      } else if (msg.type === 'session-end') {
        this.#ended = true;
        this.#dropTicket();
      }
      this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    };
    ws.onclose = (ev) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      // The server closes with the error code as the close reason.
      const fatalReason = FATAL_CODES.has(ev.reason);
      if (this.#stopped || this.#ended || this.#fatal || fatalReason) {
        this.#finish({ code: ev.code, reason: ev.reason, error: this.#fatal });
        return;
      }
      const delay = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.#attempt) * (0.75 + Math.random() / 2);
      this.#attempt++;
      this.#setState('reconnecting');
      this.#timer = setTimeout(() => this.#connect(), delay);
    };
  }

  #dropTicket() {
    this.#ticket = '';
    keepTicket(this.#token, '');
  }

  #finish(detail) {
    this.#setState('closed');
    this.dispatchEvent(new CustomEvent('closed', { detail }));
  }
}
