// The page's check of a prescription's JSON text before it is sent: the
// rules of the server and the Go SDK (session/signalapi/prescription,
// CheckJSON) that JSON.parse would hide. JSON.parse keeps the last of two
// members of the same name and JSON.stringify writes 12345678901234567890
// back as 12345678901234567000, so without this check the page would send,
// and the notary commit, something other than what the physician wrote.
// The FHIR rules themselves are the server's: its refusal names the path.

/** The FHIR path every fault's path starts with. */
export const ROOT = 'MedicationRequest';

/** Bytes of a prescription's resource, as signalapi.MaxPrescriptionSize. */
export const MAX_PRESCRIPTION_SIZE = 48 * 1024;

/** Bytes of one WebSocket message, as signalapi.MaxMessageSize. */
export const MAX_MESSAGE_SIZE = 64 * 1024;

/**
 * checkPrescriptionText checks the text of a prescription: no byte order
 * mark, JSON, one object, no member name repeated in an object, and no
 * number whose value canonical JSON (RFC 8785) would change (2.50 is fine,
 * 12345678901234567890 is not). It returns {resource} (the parsed object)
 * or {path, reason}, the path a FHIR path as the server names it.
 */
export function checkPrescriptionText(text) {
  if (text.charCodeAt(0) === 0xfeff) {
    return { path: ROOT, reason: 'starts with a byte order mark (U+FEFF): save the file as UTF-8 without one' };
  }
  let resource;
  try {
    resource = JSON.parse(text);
  } catch (err) {
    return { path: ROOT, reason: `is not valid JSON: ${err.message}` };
  }
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
    return { path: ROOT, reason: 'is not a JSON object: a prescription is a FHIR MedicationRequest, {"resourceType": "MedicationRequest", …}' };
  }
  const fault = new Scanner(text).document();
  if (fault) return fault;
  if (typeof resource.resourceType !== 'string') {
    return { path: `${ROOT}.resourceType`, reason: 'missing or not a string: a prescription is a JSON object with "resourceType": "MedicationRequest"' };
  }
  if (resource.resourceType !== ROOT) {
    return { path: `${ROOT}.resourceType`, reason: `is ${JSON.stringify(resource.resourceType.slice(0, 40))}, not "MedicationRequest"` };
  }
  return { resource };
}

/**
 * sizeFault says, for a person, why a resource is too large to send, or
 * returns '' when it fits: the resource as sent (compact JSON, UTF-8) must
 * be at most 48 KiB and the whole message at most 64 KiB.
 */
export function sizeFault(resource, message) {
  const enc = new TextEncoder();
  const size = enc.encode(JSON.stringify(resource)).length;
  const whole = enc.encode(JSON.stringify(message)).length;
  if (size <= MAX_PRESCRIPTION_SIZE && whole <= MAX_MESSAGE_SIZE) return '';
  const [n, limit] = size > MAX_PRESCRIPTION_SIZE ? [size, MAX_PRESCRIPTION_SIZE] : [whole, MAX_MESSAGE_SIZE];
  return `This prescription is ${kib(n)} (${n.toLocaleString('en')} bytes); the limit is ${kib(limit)} ` +
    `(${limit.toLocaleString('en')} bytes). Shorten its notes or narrative text, or leave out attachments, and send it again.`;
}

function kib(n) {
  return `${(n / 1024).toFixed(1).replace(/\.0$/, '')} KiB`;
}

const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

const DUPLICATE = 'is given twice in one object: each member name at most once (a reader would keep either)';

// Scanner walks JSON text that JSON.parse accepted, keeping the path.
class Scanner {
  constructor(text) {
    this.s = text;
    this.i = 0;
  }

  document() {
    return this.value(ROOT);
  }

  ws() {
    while (this.i < this.s.length && ' \t\n\r'.includes(this.s[this.i])) this.i++;
  }

  value(path) {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object(path);
    if (c === '[') return this.array(path);
    if (c === '"') {
      this.string();
      return null;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = this.i;
      const m = NUMBER.exec(this.s);
      this.i += m[0].length;
      const reason = numberFault(m[0]);
      return reason ? { path, reason } : null;
    }
    this.i += c === 'f' ? 5 : 4; // true, null, false
    return null;
  }

  object(path) {
    this.i++; // {
    const names = new Set();
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return null;
    }
    for (;;) {
      this.ws();
      const name = this.string();
      const here = `${path}.${name}`;
      if (names.has(name)) return { path: here, reason: DUPLICATE };
      names.add(name);
      this.ws();
      this.i++; // :
      const fault = this.value(here);
      if (fault) return fault;
      this.ws();
      if (this.s[this.i++] === '}') return null; // else ,
    }
  }

  array(path) {
    this.i++; // [
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return null;
    }
    for (let n = 0; ; n++) {
      const fault = this.value(`${path}[${n}]`);
      if (fault) return fault;
      this.ws();
      if (this.s[this.i++] === ']') return null; // else ,
    }
  }

  // string reads a JSON string and returns its value.
  string() {
    const start = this.i++;
    while (this.s[this.i] !== '"') this.i += this.s[this.i] === '\\' ? 2 : 1;
    this.i++;
    return JSON.parse(this.s.slice(start, this.i));
  }
}

// numberFault says why a JSON number would not keep its value through
// canonical JSON, or returns ''.
function numberFault(lit) {
  const f = Number(lit);
  const shown = lit.length > 40 ? `${lit.slice(0, 37)}...` : lit;
  if (!Number.isFinite(f)) return `is ${shown}, beyond what a JSON number may hold (an IEEE 754 double)`;
  const out = JSON.stringify(f); // ECMAScript's shortest form, as RFC 8785
  if (sameValue(lit, out)) return '';
  return `is ${shown}, which canonical JSON (RFC 8785) would write as ${out}, a different value: ` +
    'a JSON number holds about 15 significant digits (an IEEE 754 double), so write it with fewer';
}

function sameValue(a, b) {
  const x = decimal(a);
  const y = decimal(b);
  return x.neg === y.neg && x.digits === y.digits && x.exp === y.exp;
}

// decimal writes a JSON number as its sign, its significant digits without
// leading or trailing zeros, and the power of ten of the last digit.
function decimal(lit) {
  let neg = false;
  if (lit.startsWith('-')) {
    neg = true;
    lit = lit.slice(1);
  }
  let exp = 0;
  const e = lit.search(/[eE]/);
  if (e >= 0) {
    exp = Number.parseInt(lit.slice(e + 1), 10);
    lit = lit.slice(0, e);
  }
  const [intPart, frac = ''] = lit.split('.');
  let digits = (intPart + frac).replace(/^0+/, '');
  exp -= frac.length;
  const trimmed = digits.replace(/0+$/, '');
  exp += digits.length - trimmed.length;
  digits = trimmed;
  if (digits === '') return { neg: false, digits: '', exp: 0 };
  return { neg, digits, exp };
}
