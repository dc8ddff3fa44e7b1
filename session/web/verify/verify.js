// verify.js: the telenotary receipt verifier for the browser.
//
// It checks a bundle (a document, its salt and its receipt) exactly as the Go
// package notary does (ParseBundle, then VerifyBundle under a Policy) and as
// `telenotary verify` does, and ends with the same outcome: "valid" or the
// name of the first check that failed, with the same plain-language reason.
// The formats are specified in docs/FORMATS.md. Where the Go code and the
// text differ in an edge case, this file follows the Go code, since the
// point is that both give one verdict for one file.
//
// It is a pure ES module: no DOM, no network, no dependencies. Hashing and
// Ed25519 use WebCrypto (crypto.subtle), which browsers offer only to
// secure contexts (https, or http on localhost).
//
//	import { verifyBundle, parsePolicy } from './verify.js';
//	const r = await verifyBundle(bundleBytes, keysText, { minSignatures: 2 });
//	const p = await parsePolicy(policyFileBytes); // a pinned trust policy
//	const r2 = await verifyBundle(bundleBytes, p); // p.fingerprint
//	if (r.valid) console.log(r.kind, r.index, r.time, r.signers);
//	else console.log(r.outcome, r.reason, r.detail);
//	// A prescription's status answer (GET /v1/prescriptions/{commitment}/status),
//	// as notary's VerifyStatus checks it, with the bundle's salt:
//	const r3 = await verifyBundle(bundleBytes, p, { status: answerBytes });
//	if (r3.valid && r3.status.valid) console.log(r3.status.state, r3.status.fillsUsed, r3.status.fillsAllowed);
//
// Inputs may be Uint8Array, ArrayBuffer or string (encoded as UTF-8); pass
// bytes to judge a file exactly as the Go verifier would.

const MAX_BUNDLE_SIZE = 4 << 20;
const MAX_RECEIPT_SIZE = 64 << 10;
const MAX_DOCUMENT_SIZE = 1 << 20;
const MAX_CHECKPOINT_SIZE = 16 << 10;
const MAX_PROOF_HASHES = 64;
const MAX_ORIGIN_SIZE = 255;
const MAX_SIGNATURE_LINES = 100;
const MAX_NESTING = 10000; // as Go's encoding/json and the JCS canonicalizer
const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_INT64 = (1n << 63n) - 1n;

/** Every outcome a verification can have: "valid", then the failed checks. */
export const OUTCOMES = Object.freeze([
  'valid',
  'malformed input',
  'commitment mismatch',
  'leaf mismatch',
  'proof invalid',
  'root mismatch',
  'signature invalid',
  'too few trusted signatures',
  'inconsistent history',
  'wrong log',
]);

/** The sentence `telenotary verify` prints for each failed check (notary.Reason). */
export const REASONS = Object.freeze({
  'commitment mismatch': 'the document does not match this receipt: it was changed after notarization, or the salt is not the one issued with it',
  'leaf mismatch': "the receipt's details (kind, time or link) were changed after it was issued",
  'proof invalid': "the receipt's proof is damaged or incomplete",
  'root mismatch': "the receipt's proof does not lead to the log state its signatures vouch for: the receipt was altered",
  'signature invalid': 'a signature on the receipt is not valid: the receipt was altered or forged',
  'too few trusted signatures': 'the receipt is not signed by enough of the notary keys and witnesses you trust',
  'inconsistent history': 'the notary log contradicts its own earlier state: do not rely on it and report this',
  'wrong log': 'the receipt belongs to a different notary log than expected',
  'malformed input': 'the file is not a readable telenotary receipt or bundle',
});

/** The kinds of record, by leaf code (index 0 is unused). */
export const KINDS = Object.freeze(['', 'session-start', 'session-end', 'prescription', 'consent', 'document', 'allowance', 'dispense', 'revocation']);

const KIND_PRESCRIPTION = 3;
const KIND_ALLOWANCE = 6;
const KIND_DISPENSE = 7;
const KIND_REVOCATION = 8;

/**
 * PolicyError: the keys, minimum number of signatures or origin cannot make a
 * policy, so nothing can be verified (the command line's usage error). It is
 * thrown, not returned: it says nothing about the bundle.
 */
export class PolicyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PolicyError';
  }
}

// Failure ends a verification with an outcome; verifyBundle returns it.
class Failure {
  constructor(outcome, detail) {
    this.outcome = outcome;
    this.detail = detail;
  }
}

function fail(outcome, detail) {
  throw new Failure(outcome, detail);
}

function malformed(detail) {
  fail('malformed input', detail);
}

// ---------------------------------------------------------------------------
// Bytes, text, hex, base64.

const textEncoder = new TextEncoder();
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Lax = new TextDecoder('utf-8', { ignoreBOM: true });

function toBytes(x, what) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (typeof x === 'string') return textEncoder.encode(x);
  throw new TypeError(`${what} must be a Uint8Array, an ArrayBuffer or a string`);
}

function utf8Valid(b) {
  try {
    utf8Fatal.decode(b);
    return true;
  } catch {
    return false;
  }
}

// text decodes bytes already known to be valid UTF-8.
function text(b) {
  return utf8Lax.decode(b);
}

function ascii(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function startsWith(b, prefix) {
  if (b.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false;
  return true;
}

const HEX = '0123456789abcdef';

/** hex returns bytes as lowercase hexadecimal. */
export function hex(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}

// parseLowerHex decodes exactly n bytes from 2n lowercase hex digits (bytes),
// or returns null: the one spelling of a hash, salt or commitment.
function parseLowerHex(src, n) {
  if (src.length !== 2 * n) return null;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const hi = lowerHexValue(src[2 * i]);
    const lo = lowerHexValue(src[2 * i + 1]);
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function lowerHexValue(c) {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

function anyHexValue(c) {
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return lowerHexValue(c);
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VALUES = (() => {
  const t = new Int16Array(256).fill(-1);
  for (let i = 0; i < 64; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

// decodeBase64 decodes standard base64 with padding as Go's
// base64.StdEncoding does: carriage returns and line feeds are skipped, and
// bits after the last byte may be anything. With strict (Go's Strict()),
// those bits must be zero and CR or LF make the input invalid (the callers
// that use strict reject them anyway). It returns null for invalid input.
function decodeBase64(src, strict) {
  if (!strict) src = src.filter((c) => c !== 0x0a && c !== 0x0d);
  if (src.length % 4 !== 0) return null;
  const out = new Uint8Array((src.length / 4) * 3);
  let o = 0;
  for (let q = 0; q < src.length; q += 4) {
    const last = q + 4 === src.length;
    const a = B64_VALUES[src[q]];
    const b = B64_VALUES[src[q + 1]];
    if (a < 0 || b < 0) return null;
    if (last && src[q + 2] === 0x3d) {
      if (src[q + 3] !== 0x3d || (strict && (b & 15) !== 0)) return null;
      out[o++] = (a << 2) | (b >> 4);
      break;
    }
    const c = B64_VALUES[src[q + 2]];
    if (c < 0) return null;
    if (last && src[q + 3] === 0x3d) {
      if (strict && (c & 3) !== 0) return null;
      out[o++] = (a << 2) | (b >> 4);
      out[o++] = ((b & 15) << 4) | (c >> 2);
      break;
    }
    const d = B64_VALUES[src[q + 3]];
    if (d < 0) return null;
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 15) << 4) | (c >> 2);
    out[o++] = ((c & 3) << 6) | d;
  }
  return out.subarray(0, o);
}

function encodeBase64(b) {
  let s = '';
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (b.length - i === 1) {
    const n = b[i] << 16;
    s += B64[n >> 18] + B64[(n >> 12) & 63] + '==';
  } else if (b.length - i === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + '=';
  }
  return s;
}

function pushUTF8(buf, r) {
  if (r < 0x80) buf.push(r);
  else if (r < 0x800) buf.push(0xc0 | (r >> 6), 0x80 | (r & 63));
  else if (r < 0x10000) buf.push(0xe0 | (r >> 12), 0x80 | ((r >> 6) & 63), 0x80 | (r & 63));
  else buf.push(0xf0 | (r >> 18), 0x80 | ((r >> 12) & 63), 0x80 | ((r >> 6) & 63), 0x80 | (r & 63));
}

// ---------------------------------------------------------------------------
// Unicode classes as Go's unicode package (Unicode 15.0.0) has them, so that
// names and origins are judged alike whatever Unicode version the browser has.

// isGoSpace is unicode.IsSpace.
function isGoSpace(r) {
  return (r >= 0x09 && r <= 0x0d) || r === 0x20 || r === 0x85 || r === 0xa0 || r === 0x1680 ||
    (r >= 0x2000 && r <= 0x200a) || r === 0x2028 || r === 0x2029 || r === 0x202f || r === 0x205f || r === 0x3000;
}

// PRINT_RANGES lists the code points for which Go's unicode.IsPrint is true,
// except the space U+0020: letters, marks, numbers, punctuation and symbols.
// Each range is "gap,length-1;" in base 36, the gap counted from the end of
// the previous range. TestPrintRangesAreGo's table checks it against Go.
// BEGIN PRINT_RANGES
const PRINT_RANGES =
  'x,2l;y,b;1,jt;2,5;4,6;1,0;1,j;1,b0;1,11;2,1d;2,2;1,1i;8,q;4,5;h,l;1,5b;1,1b;2,1m;2,2s;e,1m;2,1c;2,e;' +
  '1,r;2,0;1,a;5,u;9,21;1,4g;1,7;2,1;2,l;1,6;1,0;3,3;2,8;2,1;2,3;8,0;4,1;1,4;2,o;2,2;1,5;4,1;2,l;1,6;1,' +
  '1;1,1;1,1;2,0;1,4;4,1;2,2;3,0;7,3;1,0;7,g;a,2;1,8;1,2;1,l;1,6;1,1;1,4;2,9;1,2;1,2;2,0;f,3;2,b;7,6;1,' +
  '2;1,7;2,1;2,l;1,6;1,1;1,4;2,8;2,1;2,2;7,2;4,1;1,4;2,h;a,1;1,5;3,2;1,3;3,1;1,0;1,1;3,1;3,2;3,b;4,4;3,' +
  '2;1,3;2,0;6,0;e,k;5,c;1,2;1,m;1,f;2,8;1,2;1,3;7,1;1,2;2,0;2,3;2,9;7,l;1,2;1,m;1,9;1,4;2,8;1,2;1,3;7,' +
  '1;6,1;1,3;2,9;1,2;c,c;1,2;1,1e;1,2;1,5;4,f;2,p;1,2;1,h;3,n;1,8;1,0;2,6;3,0;4,5;1,0;1,7;6,9;2,2;c,1l;' +
  '4,s;11,1;1,0;1,4;1,n;1,0;1,m;2,4;1,0;1,6;1,9;2,3;w,1z;1,z;4,12;1,z;1,e;1,c;11,5h;1,0;5,0;2,ag;1,3;2,' +
  '6;1,0;1,3;2,14;1,3;2,w;1,3;2,6;1,0;1,3;2,e;1,1k;1,3;2,1u;2,v;3,p;6,2d;2,5;2,hr;1,r;3,2g;7,l;9,n;9,j;' +
  'c,c;1,2;1,1;c,2l;2,9;6,9;6,d;1,a;6,2g;7,16;5,1x;a,u;1,b;4,b;4,0;3,15;2,4;b,17;4,p;6,a;3,1p;2,1s;1,s;' +
  '2,a;6,9;6,d;2,u;1d,24;3,1a;1,37;8,1n;3,e;3,1n;7,16;2,a;8,16;5,et;2,5;2,11;2,5;2,7;1,0;1,0;1,0;1,u;2,' +
  '1g;1,e;1,d;2,5;1,i;2,2;1,8;h,n;8,1a;h,1;2,q;1,c;3,w;f,w;f,3v;4,ie;p,a;l,1eb;2,v;1,9o;5,18;1,0;5,0;2,' +
  '1j;7,1;e,n;9,6;1,6;1,6;1,6;1,6;1,6;1,6;1,6;1,3h;y,p;1,2g;c,5x;q,b;5,1q;1,2d;2,2u;5,16;1,2l;1,2b;c,1a' +
  ';1,mlo;3,1i;9,9n;k,53;8,5m;5,1;1,0;1,4;o,1m;3,9;6,1j;8,1x;8,b;6,37;b,t;3,25;1,a;4,w;1,1i;9,d;2,9;2,2' +
  'u;o,r;a,5;2,5;2,5;9,6;1,6;1,1n;4,3h;2,9;6,8mb;c,m;4,1c;6is,a5;2,2x;12,6;c,4;5,p;1,4;1,0;1,1;1,1;1,3g' +
  ';g,cc;2,1h;7,0;w,15;6,1e;1,i;1,3;4,4;1,3q;4,59;3,5;2,5;2,5;2,2;3,6;1,6;d,1;2,b;1,p;1,i;1,1;1,e;2,d;y' +
  ',3e;5,2;4,18;3,2f;1,c;3,0;1b,19;3m,s;3,1c;f,r;4,z;9,t;5,16;5,t;1,10;4,d;16,4d;2,9;6,z;4,z;4,13;8,1f;' +
  'b,b;1,e;1,6;1,1;1,a;1,e;1,6;1,1;1v,8m;9,l;a,7;o,5;1,15;1,8;1x,5;2,0;1,17;1,1;3,0;2,m;1,1z;8,8;1c,i;1' +
  ',1;5,w;3,q;5,0;1s,1j;4,j;2,1d;1,1;5,7;1,2;1,s;2,2;4,9;7,8;7,1r;w,12;4,b;9,1h;3,s;2,q;5,p;7,3;c,6;28,' +
  '20;1j,1e;d,1e;7,19;8,9;86,u;1,15;1,2;2,1;23,16;8,15;m,p;12,r;k,m;9,25;4,z;9,1p;1,4;d,o;7,9;6,1g;1,h;' +
  '8,12;9,2n;1,j;b,h;1,1a;1q,6;1,0;1,3;1,e;1,a;6,1m;5,9;6,3;1,7;2,1;2,l;1,6;1,1;1,4;1,9;2,1;2,2;2,0;6,0' +
  ';5,6;2,6;3,4;3v,2j;1,4;u,1z;8,9;4m,1h;2,11;y,1w;b,9;6,c;j,1l;6,9;1i,q;2,e;4,m;55,1n;2s,2a;c,7;2,0;2,' +
  '7;1,1;1,t;1,1;2,b;9,9;1y,7;2,19;2,a;r,1z;8,2a;d,20;7,9;6u,8;1,18;1,d;a,s;3,v;2,l;1,d;21,6;1,1;1,17;3' +
  ',0;1,1;1,8;8,9;6,5;1,1;1,10;1,1;1,5;7,9;8m,o;7,g;1,14;3,r;2e,0;f,1d;d,pm;2u,32;1,4;b,5f;218,2q;d,tr;' +
  'g,l;33e,g6;6nt,fs;7,u;1,9;4,28;1,9;6,t;2,5;a,1x;a,9;1,6;1,k;5,i;j4,2i;2t,22;4,1k;7,g;1s,4;b,1;e,4qf;' +
  '8,yd;16,8;6w7,3;1,6;1,1;1,82;f,0;t,2;2,0;e,3;8,az;1s4,2y;5,c;3,8;7,9;2,3;3mo,19;2,m;9,37;1o,6t;a,12;' +
  '2,21;8,33;l,1x;3e,j;c,j;c,2e;9,o;3r,2c;1,1y;1,1;2,0;2,1;2,3;1,b;1,0;1,6;1,1s;1,3;2,7;1,6;1,r;1,3;1,4' +
  ';1,0;3,6;1,9f;2,83;2,jh;f,4;1,e;uo,u;6,5;5x,6;1,g;2,6;1,1;1,4;5,1p;x,0;34,18;3,d;2,9;4,1;8w,u;h,1l;5' +
  ',0;cw,15;km,6;1,3;1,1;1,e;1,5g;2,f;15,23;4,9;4,1;lt,1v;24,1o;5e,3;1,q;1,1;1,0;2,0;1,9;1,3;1,0;1,0;6,' +
  '0;4,0;1,0;1,0;1,2;1,1;1,0;2,0;1,0;1,0;1,0;1,0;1,1;1,0;2,3;1,6;1,3;1,3;1,0;1,9;1,g;5,2;1,4;1,g;1g,1;7' +
  'i,17;4,2r;c,e;2,e;1,e;1,10;a,4t;1k,s;d,17;4,8;7,1;e,5;4a,rb;4,g;3,c;3,3a;4,2m;6,b;4,0;f,b;4,1j;8,9;6' +
  ',13;8,t;2,1;26,9f;c,d;2,c;3,8;7,19;1,6;8,d;4,8;7,8;7,42;1,1i;11,9;sm,wyn;w,37d;6,65;2,4g1;e,5rk;2e7,' +
  'f1;15u,3t6;5,38f;f9e8,6n;';
// END PRINT_RANGES

const printTable = (() => {
  const starts = [];
  const ends = [];
  let prev = 0;
  for (const pair of PRINT_RANGES.split(';')) {
    if (!pair) continue;
    const [gap, len] = pair.split(',');
    const start = prev + parseInt(gap, 36);
    const end = start + parseInt(len, 36);
    starts.push(start);
    ends.push(end);
    prev = end + 1;
  }
  return { starts, ends };
})();

// isGoGraphicNonSpace is unicode.IsPrint(r) && r != ' '.
function isGoGraphicNonSpace(r) {
  if (r < 0x80) return r > 0x20 && r < 0x7f;
  const { starts, ends } = printTable;
  let lo = 0;
  let hi = starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (r < starts[mid]) hi = mid - 1;
    else if (r > ends[mid]) lo = mid + 1;
    else return true;
  }
  return false;
}

// originError returns why bytes cannot be a log origin (notary.ValidateOrigin),
// or '' when they can: 1 to 255 bytes of printable UTF-8 without spaces or '+'.
function originError(b) {
  if (b.length === 0 || b.length > MAX_ORIGIN_SIZE) return `origin must be 1 to ${MAX_ORIGIN_SIZE} bytes, got ${b.length}`;
  if (!utf8Valid(b)) return 'origin is not valid UTF-8';
  for (const ch of text(b)) {
    const r = ch.codePointAt(0);
    if (!isGoGraphicNonSpace(r) || r === 0x2b) return `origin contains ${goQuote(ch, "'")}; use printable characters without spaces or '+'`;
  }
  return '';
}

// isValidKeyName is the note package's isValidName for a string decoded
// from valid UTF-8: not empty, no Unicode space, no '+'.
function isValidKeyName(name) {
  if (name === '') return false;
  for (const ch of name) {
    const r = ch.codePointAt(0);
    if (isGoSpace(r) || r === 0x2b) return false;
  }
  return true;
}

// goQuote quotes a string as Go's strconv.Quote (or a one-rune string as
// strconv.QuoteRune, with quote "'"), so that messages read alike.
function goQuote(s, quote = '"') {
  const SPECIAL = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v' };
  let out = quote;
  for (const ch of s) {
    const r = ch.codePointAt(0);
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (r === 0x20 || isGoGraphicNonSpace(r)) out += ch;
    else if (SPECIAL[r]) out += SPECIAL[r];
    else if (r < 0x20 || r === 0x7f) out += '\\x' + r.toString(16).padStart(2, '0');
    else if (r >= 0xd800 && r <= 0xdfff) out += '\\ufffd';
    else if (r < 0x10000) out += '\\u' + r.toString(16).padStart(4, '0');
    else out += '\\U' + r.toString(16).padStart(8, '0');
  }
  return out + quote;
}

// ---------------------------------------------------------------------------
// JSON syntax, as Go's encoding/json scanner accepts it.

function isWS(c) {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipWS(b, i) {
  while (i < b.length && isWS(b[i])) i++;
  return i;
}

class SyntaxFailure extends Error {}

function syntax(msg) {
  throw new SyntaxFailure(msg);
}

// scanString returns the index after the JSON string that starts at b[i].
// Like encoding/json it checks escapes and control characters, not UTF-8.
function scanString(b, i) {
  i++;
  for (;;) {
    if (i >= b.length) syntax('unexpected end of JSON input');
    const c = b[i];
    if (c === 0x22) return i + 1;
    if (c < 0x20) syntax(`invalid character in string literal at byte ${i}`);
    if (c === 0x5c) {
      const e = b[i + 1];
      if (e === 0x75) {
        for (let k = 2; k < 6; k++) {
          if (i + k >= b.length) syntax('unexpected end of JSON input');
          if (anyHexValue(b[i + k]) < 0) syntax(`invalid character in \\u escape at byte ${i + k}`);
        }
        i += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else if (e === undefined) {
        syntax('unexpected end of JSON input');
      } else {
        syntax(`invalid escape at byte ${i}`);
      }
      continue;
    }
    i++;
  }
}

function isDigit(c) {
  return c >= 0x30 && c <= 0x39;
}

// scanNumber returns the index after the JSON number that starts at b[i].
function scanNumber(b, i) {
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if (isDigit(b[i])) while (isDigit(b[i])) i++;
  else syntax(`invalid number at byte ${i}`);
  if (b[i] === 0x2e) {
    i++;
    if (!isDigit(b[i])) syntax(`invalid number at byte ${i}`);
    while (isDigit(b[i])) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    if (!isDigit(b[i])) syntax(`invalid number at byte ${i}`);
    while (isDigit(b[i])) i++;
  }
  return i;
}

function scanLiteral(b, i, word) {
  for (let k = 0; k < word.length; k++) {
    if (b[i + k] !== word.charCodeAt(k)) syntax(`invalid literal at byte ${i}`);
  }
  return i + word.length;
}

// scanValue returns the index after the JSON value that starts at b[i]
// (after whitespace), nested at most MAX_NESTING deep.
function scanValue(b, i) {
  const stack = [];
  for (;;) {
    i = skipWS(b, i);
    if (i >= b.length) syntax('unexpected end of JSON input');
    const c = b[i];
    let closed = false;
    if (c === 0x7b || c === 0x5b) {
      stack.push(c);
      if (stack.length > MAX_NESTING) syntax('exceeded max depth');
      i = skipWS(b, i + 1);
      if (b[i] === (c === 0x7b ? 0x7d : 0x5d)) {
        i++;
        stack.pop();
        closed = true;
      } else if (c === 0x7b) {
        i = scanMemberName(b, i);
        continue;
      } else {
        continue;
      }
    }
    if (!closed) {
      if (c === 0x22) i = scanString(b, i);
      else if (c === 0x2d || isDigit(c)) i = scanNumber(b, i);
      else if (c === 0x74) i = scanLiteral(b, i, 'true');
      else if (c === 0x66) i = scanLiteral(b, i, 'false');
      else if (c === 0x6e) i = scanLiteral(b, i, 'null');
      else syntax(`invalid character at byte ${i}`);
    }
    // After a value: close containers or move to the next element.
    for (;;) {
      if (stack.length === 0) return i;
      i = skipWS(b, i);
      const top = stack[stack.length - 1];
      if (b[i] === 0x2c) {
        i++;
        if (top === 0x7b) i = scanMemberName(b, skipWS(b, i));
        break;
      }
      if (b[i] === (top === 0x7b ? 0x7d : 0x5d)) {
        i++;
        stack.pop();
        continue;
      }
      if (i >= b.length) syntax('unexpected end of JSON input');
      syntax(`invalid character after a value at byte ${i}`);
    }
  }
}

// scanMemberName scans `"name" :` at b[i] and returns the index after the colon.
function scanMemberName(b, i) {
  if (b[i] !== 0x22) syntax(i >= b.length ? 'unexpected end of JSON input' : `want a member name at byte ${i}`);
  i = skipWS(b, scanString(b, i));
  if (b[i] !== 0x3a) syntax(i >= b.length ? 'unexpected end of JSON input' : `want ':' at byte ${i}`);
  return i + 1;
}

// ---------------------------------------------------------------------------
// The receipt scanner, as strict as notary's (jsonscan.go).

class Scanner {
  constructor(b) {
    this.b = b;
    this.i = 0;
  }

  peek() {
    this.i = skipWS(this.b, this.i);
    return this.i < this.b.length ? this.b[this.i] : 0;
  }

  expect(c) {
    if (this.peek() !== c) {
      if (this.i >= this.b.length) syntax('unexpected end of JSON');
      syntax(`want ${JSON.stringify(String.fromCharCode(c))} at byte ${this.i}`);
    }
    this.i++;
  }

  // string reads a JSON string as Go's receipt scanner does and returns its
  // bytes: an escaped lone surrogate becomes U+FFFD (taking the escape after
  // it along), raw bytes must be valid UTF-8.
  string() {
    const b = this.b;
    if (this.peek() !== 0x22) {
      if (this.i < b.length && b[this.i] === 0x6e) syntax('is null');
      if (this.i >= b.length) syntax('unexpected end of JSON');
      syntax(`want '"' at byte ${this.i}`);
    }
    this.i++;
    const buf = [];
    for (;;) {
      if (this.i >= b.length) syntax('unexpected end of JSON');
      const c = b[this.i];
      if (c === 0x22) {
        this.i++;
        const out = Uint8Array.from(buf);
        if (!utf8Valid(out)) syntax('is not valid UTF-8');
        return out;
      }
      if (c < 0x20) syntax(`holds a raw control character at byte ${this.i}`);
      if (c !== 0x5c) {
        buf.push(c);
        this.i++;
        continue;
      }
      if (this.i + 1 >= b.length) syntax('unexpected end of JSON');
      const esc = b[this.i + 1];
      this.i += 2;
      switch (esc) {
        case 0x22: case 0x5c: case 0x2f: buf.push(esc); break;
        case 0x62: buf.push(0x08); break;
        case 0x66: buf.push(0x0c); break;
        case 0x6e: buf.push(0x0a); break;
        case 0x72: buf.push(0x0d); break;
        case 0x74: buf.push(0x09); break;
        case 0x75: {
          let r = this.hex4();
          if (r >= 0xd800 && r < 0xe000) {
            let r2 = 0xfffd;
            if (this.i + 1 < b.length && b[this.i] === 0x5c && b[this.i + 1] === 0x75) {
              this.i += 2;
              r2 = this.hex4();
            }
            r = r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000 ? 0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00) : 0xfffd;
          }
          pushUTF8(buf, r);
          break;
        }
        default:
          syntax(`has an invalid escape \\${String.fromCharCode(esc)}`);
      }
    }
  }

  hex4() {
    const b = this.b;
    if (this.i + 4 > b.length) syntax('unexpected end of JSON');
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const d = anyHexValue(b[this.i + k]);
      if (d < 0) syntax('has an invalid \\u escape');
      v = (v << 4) | d;
    }
    this.i += 4;
    return v;
  }

  // uint reads a whole number in its one spelling, as a BigInt.
  uint() {
    const b = this.b;
    this.i = skipWS(b, this.i);
    const start = this.i;
    while (this.i < b.length && isDigit(b[this.i])) this.i++;
    if (this.i < b.length) {
      const c = b[this.i];
      if (c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2d || c === 0x2b) {
        syntax('must be a whole number from 0 written without sign, fraction or exponent');
      }
      if (c === 0x6e) syntax('is null');
    }
    const n = this.i - start;
    if (n === 0) syntax('must be a whole number from 0');
    if (n > 1 && b[start] === 0x30) syntax('must not have leading zeros');
    const v = BigInt(ascii(b.subarray(start, this.i)));
    if (v > MAX_UINT64) syntax('is out of range');
    return v;
  }

  hash() {
    const h = parseLowerHex(this.string(), 32);
    if (h === null) syntax('want 64 lowercase hex digits');
    return h;
  }

  hashList(max) {
    const b = this.b;
    if (this.peek() !== 0x5b) {
      if (this.i < b.length && b[this.i] === 0x6e) syntax('is null');
      syntax('must be a list');
    }
    this.i++;
    const out = [];
    if (this.peek() === 0x5d) {
      this.i++;
      return out;
    }
    for (let k = 0; ; k++) {
      if (k >= max) syntax(`has more than ${max} entries`);
      try {
        out.push(this.hash());
      } catch (e) {
        if (e instanceof SyntaxFailure) syntax(`entry ${k}: ${e.message}`);
        throw e;
      }
      const c = this.peek();
      if (c === 0x2c) {
        this.i++;
      } else if (c === 0x5d) {
        this.i++;
        return out;
      } else if (c === 0) {
        syntax('unexpected end of JSON');
      } else {
        syntax(`want ',' or ']' at byte ${this.i}`);
      }
    }
  }
}

const RECEIPT_FIELDS = ['version', 'origin', 'index', 'kind', 'commitment', 'link', 'timestamp', 'leaf_hash', 'inclusion_proof', 'checkpoint'];
const ZERO32 = new Uint8Array(32);

// parseReceipt decodes a version-1 receipt (notary.Receipt.UnmarshalJSON).
function parseReceipt(raw) {
  if (raw.length > MAX_RECEIPT_SIZE) malformed(`receipt is ${raw.length} bytes, more than ${MAX_RECEIPT_SIZE}`);
  const s = new Scanner(raw);
  if (s.peek() !== 0x7b) malformed('receipt must be a JSON object');
  s.i++;
  const r = { link: ZERO32 };
  const seen = new Set();
  let version = 0n;
  for (let first = true; ; first = false) {
    if (first && s.peek() === 0x7d) {
      s.i++;
      break;
    }
    let name;
    try {
      name = text(s.string());
    } catch (e) {
      if (e instanceof SyntaxFailure) malformed(`receipt is not JSON: member name ${e.message}`);
      throw e;
    }
    try {
      s.expect(0x3a);
    } catch (e) {
      if (e instanceof SyntaxFailure) malformed(`receipt is not JSON: ${e.message}`);
      throw e;
    }
    if (!RECEIPT_FIELDS.includes(name)) malformed(`receipt has unknown field ${JSON.stringify(name)}`);
    if (seen.has(name)) malformed(`receipt has field ${JSON.stringify(name)} twice`);
    seen.add(name);
    try {
      if (name === 'version') version = s.uint();
      else decodeReceiptField(s, name, r);
    } catch (e) {
      if (e instanceof SyntaxFailure) malformed(`receipt field ${JSON.stringify(name)}: ${e.message}`);
      throw e;
    }
    const c = s.peek();
    if (c === 0x2c) {
      s.i++;
      continue;
    }
    if (c === 0x7d) {
      s.i++;
      break;
    }
    if (c === 0) malformed('receipt is not JSON: unexpected end of JSON');
    malformed(`receipt is not JSON: want ',' or '}' at byte ${s.i}`);
  }
  for (const f of RECEIPT_FIELDS) {
    if (f !== 'link' && !seen.has(f)) malformed(`receipt field ${JSON.stringify(f)} is missing`);
  }
  if (version !== 1n) malformed(`receipt field "version" is ${version}; this verifier reads version 1`);
  if (s.peek() !== 0) malformed('receipt has data after its closing brace');
  return r;
}

function decodeReceiptField(s, name, r) {
  switch (name) {
    case 'origin': {
      const o = s.string();
      const err = originError(o);
      if (err) syntax(err);
      r.origin = text(o);
      break;
    }
    case 'index':
      r.index = s.uint();
      break;
    case 'kind': {
      const name = text(s.string());
      const k = KINDS.indexOf(name);
      if (k < 1) syntax(`unknown kind ${goQuote(name)} (want session-start, session-end, prescription, consent, document, allowance, dispense or revocation)`);
      r.kind = k;
      break;
    }
    case 'commitment':
      r.commitment = s.hash();
      break;
    case 'link':
      r.link = s.hash();
      if (equalBytes(r.link, ZERO32)) syntax('is all zeros; a receipt without a link leaves the field out');
      break;
    case 'timestamp':
      r.timestamp = s.uint();
      if (r.timestamp > MAX_INT64) syntax('is out of range');
      break;
    case 'leaf_hash':
      r.leafHash = s.hash();
      break;
    case 'inclusion_proof':
      r.inclusionProof = s.hashList(MAX_PROOF_HASHES);
      break;
    case 'checkpoint': {
      const cp = s.string();
      if (cp.length > MAX_CHECKPOINT_SIZE) syntax(`is ${cp.length} bytes, more than ${MAX_CHECKPOINT_SIZE}`);
      r.checkpoint = cp;
      break;
    }
  }
}

// ---------------------------------------------------------------------------
// RFC 8785 canonical JSON, as github.com/gowebpki/jcs computes it.

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
const JCS_ESCAPES = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };

/**
 * canonicalJSON returns the RFC 8785 canonical form of a JSON document (the
 * bytes a JSON document is committed as), as notary.CanonicalJSON does. It
 * throws an Error for a document that cannot be canonicalized: invalid JSON
 * or UTF-8, duplicate member names, lone surrogates, numbers out of range,
 * or more than 1 MiB in or out.
 */
export function canonicalJSON(doc) {
  try {
    return canonicalize(toBytes(doc, 'document'));
  } catch (e) {
    if (e instanceof Failure) throw new Error(e.detail);
    throw e;
  }
}

function canonicalize(b) {
  if (b.length > MAX_DOCUMENT_SIZE) malformed(`document is ${b.length} bytes, more than the ${MAX_DOCUMENT_SIZE} allowed`);
  try {
    if (skipWS(b, scanValue(b, 0)) !== b.length) syntax('data after the value');
  } catch (e) {
    if (e instanceof SyntaxFailure) malformed('document is not valid JSON');
    throw e;
  }
  if (!utf8Valid(b)) malformed('document is not valid UTF-8');
  let out;
  try {
    out = textEncoder.encode(serializeJCS(parseJCS(b)));
  } catch (e) {
    if (e instanceof SyntaxFailure) malformed(`document cannot be canonicalized: ${e.message}`);
    throw e;
  }
  if (out.length > MAX_DOCUMENT_SIZE) malformed(`canonical document is ${out.length} bytes, more than the ${MAX_DOCUMENT_SIZE} allowed`);
  return out;
}

// parseJCS parses valid JSON (checked by scanValue) into a tree: scalars
// hold their canonical text, objects their members sorted by UTF-16 code
// units. It uses no recursion, so deep documents cannot exhaust the stack.
function parseJCS(b) {
  let i = 0;
  const ws = () => {
    i = skipWS(b, i);
  };
  const str = () => {
    i++; // the opening quote
    let s = '';
    let run = i;
    for (;;) {
      const c = b[i];
      if (c === 0x22) {
        s += text(b.subarray(run, i));
        i++;
        return s;
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      s += text(b.subarray(run, i));
      const e = b[i + 1];
      i += 2;
      if (e === 0x75) {
        const u = hexAt(b, i);
        i += 4;
        if (u >= 0xd800 && u <= 0xdfff) {
          if (u > 0xdbff) syntax(`invalid high surrogate \\u${u.toString(16)}`);
          if (b[i] !== 0x5c || b[i + 1] !== 0x75) syntax('missing surrogate');
          const u2 = hexAt(b, i + 2);
          i += 6;
          if (u2 < 0xdc00 || u2 > 0xdfff) syntax(`invalid low surrogate \\u${u2.toString(16)}`);
          s += String.fromCharCode(u, u2);
        } else {
          s += String.fromCharCode(u);
        }
      } else {
        s += JCS_ESCAPES[e];
      }
      run = i;
    }
  };
  const scalar = () => {
    const start = i;
    while (i < b.length && b[i] !== 0x2c && b[i] !== 0x5d && b[i] !== 0x7d && !isWS(b[i])) i++;
    const tok = ascii(b.subarray(start, i));
    if (tok === 'true' || tok === 'false' || tok === 'null') return tok;
    if (!NUMBER.test(tok)) syntax(`invalid literal or number ${tok.slice(0, 32)}`);
    const x = Number(tok);
    if (!Number.isFinite(x)) syntax(`number out of range: ${tok.slice(0, 32)}`);
    return x === 0 ? '0' : String(x);
  };
  const finishObject = (node) => {
    node.members.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    for (let k = 1; k < node.members.length; k++) {
      if (node.members[k - 1][0] === node.members[k][0]) syntax(`duplicate key ${JSON.stringify(node.members[k][0]).slice(0, 40)}`);
    }
    return node;
  };
  const memberName = (frame) => {
    ws();
    frame.key = str();
    ws();
    i++; // the colon
  };

  const stack = [];
  for (;;) {
    ws();
    const c = b[i];
    let value;
    if (c === 0x7b || c === 0x5b) {
      const node = c === 0x7b ? { members: [] } : { items: [] };
      i++;
      ws();
      if (b[i] === (c === 0x7b ? 0x7d : 0x5d)) {
        i++;
        value = node;
      } else {
        const frame = { node, key: '' };
        stack.push(frame);
        if (c === 0x7b) memberName(frame);
        continue;
      }
    } else if (c === 0x22) {
      value = { text: quoteJCS(str()) };
    } else {
      value = { text: scalar() };
    }
    for (;;) {
      if (stack.length === 0) return value;
      const frame = stack[stack.length - 1];
      const node = frame.node;
      if (node.members) node.members.push([frame.key, value]);
      else node.items.push(value);
      ws();
      if (b[i] === 0x2c) {
        i++;
        if (node.members) memberName(frame);
        break;
      }
      i++; // the closing bracket or brace
      stack.pop();
      value = node.members ? finishObject(node) : node;
    }
  }
}

function hexAt(b, i) {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const d = anyHexValue(b[i + k]);
    if (d < 0) syntax('invalid \\u escape');
    v = (v << 4) | d;
  }
  return v;
}

function quoteJCS(s) {
  let out = '"';
  let run = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(run, k);
    run = k + 1;
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      default: out += '\\u00' + HEX[c >> 4] + HEX[c & 15];
    }
  }
  return out + s.slice(run) + '"';
}

function serializeJCS(root) {
  const parts = [];
  const stack = [{ v: root, k: -1 }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1];
    const v = f.v;
    if (v.text !== undefined) {
      parts.push(v.text);
      stack.pop();
      continue;
    }
    const list = v.members || v.items;
    if (f.k < 0) {
      parts.push(v.members ? '{' : '[');
      f.k = 0;
    }
    if (f.k >= list.length) {
      parts.push(v.members ? '}' : ']');
      stack.pop();
      continue;
    }
    if (f.k > 0) parts.push(',');
    let child = list[f.k];
    if (v.members) {
      parts.push(quoteJCS(child[0]), ':');
      child = child[1];
    }
    f.k++;
    stack.push({ v: child, k: -1 });
  }
  return parts.join('');
}

// ---------------------------------------------------------------------------
// Strictly read JSON objects (notary's parseObject).

// parseObject splits b, which must be exactly one JSON object whose member
// names are all in allowed, without duplicates, into its members' values
// (each its exact bytes), as notary's parseObject does for bundles and
// status answers: unknown and duplicate members, and anything
// after the closing brace, are refused in messages that start with what
// ("bundle", "status") and name the member.
function parseObject(b, what, allowed) {
  const members = new Map();
  try {
    let i = skipWS(b, 0);
    if (i >= b.length) syntax('unexpected end of JSON input');
    if (b[i] !== 0x7b) malformed(`${what} must be a JSON object`);
    i = skipWS(b, i + 1);
    if (b[i] === 0x7d) {
      i++;
    } else {
      for (;;) {
        if (b[i] !== 0x22) syntax(i >= b.length ? 'unexpected end of JSON input' : `want a member name at byte ${i}`);
        const start = i;
        i = scanString(b, i);
        const name = memberString(b.subarray(start, i));
        if (!allowed.includes(name)) malformed(`${what} has unknown field ${goQuote(name)}`);
        if (members.has(name)) malformed(`${what} has field ${goQuote(name)} twice`);
        i = skipWS(b, i);
        if (b[i] !== 0x3a) syntax(i >= b.length ? 'unexpected end of JSON input' : `want ':' at byte ${i}`);
        const vstart = skipWS(b, i + 1);
        i = scanValue(b, vstart);
        members.set(name, b.subarray(vstart, i));
        i = skipWS(b, i);
        if (b[i] === 0x2c) {
          i = skipWS(b, i + 1);
          continue;
        }
        if (b[i] === 0x7d) {
          i++;
          break;
        }
        syntax(i >= b.length ? 'unexpected end of JSON input' : `invalid character after a member at byte ${i}`);
      }
    }
    if (skipWS(b, i) !== b.length) malformed(`${what} has data after its closing brace`);
  } catch (e) {
    if (e instanceof SyntaxFailure) malformed(`${what} is not JSON: ${e.message}`);
    throw e;
  }
  return members;
}

// ---------------------------------------------------------------------------
// Bundles (notary.Bundle.UnmarshalJSON).

const BUNDLE_FIELDS = ['version', 'document', 'document_base64', 'salt', 'receipt'];

// parseBundle returns the bundle's salt, receipt and canonical document bytes.
function parseBundle(b) {
  if (b.length > MAX_BUNDLE_SIZE) malformed(`bundle is ${b.length} bytes, more than ${MAX_BUNDLE_SIZE}`);
  const members = parseObject(b, 'bundle', BUNDLE_FIELDS);

  const version = members.get('version');
  if (version === undefined) malformed('bundle field "version" is missing');
  if (ascii(version) !== '1') malformed(`bundle field "version" must be 1, not ${ascii(version.subarray(0, 40))}`);
  const doc = members.get('document');
  const docB64 = members.get('document_base64');
  if (doc !== undefined && docB64 !== undefined) malformed('bundle has both "document" and "document_base64"');
  if (doc === undefined && docB64 === undefined) malformed('bundle field "document" is missing');
  let raw = null;
  if (docB64 !== undefined) raw = decodeDocumentBase64(docB64);
  const saltRaw = members.get('salt');
  if (saltRaw === undefined) malformed('bundle field "salt" is missing');
  const salt = saltRaw[0] === 0x22 ? parseLowerHex(memberBytes(saltRaw), 32) : null;
  if (salt === null) malformed('bundle field "salt" must be 64 lowercase hex digits');
  const receiptRaw = members.get('receipt');
  if (receiptRaw === undefined) malformed('bundle field "receipt" is missing');
  const receipt = parseReceipt(receiptRaw);
  let canonical;
  if (raw !== null) {
    if (raw.length > MAX_DOCUMENT_SIZE) malformed(`document is ${raw.length} bytes, more than ${MAX_DOCUMENT_SIZE}`);
    canonical = raw;
  } else {
    canonical = canonicalize(doc);
  }
  return { salt, receipt, canonical, json: raw === null };
}

// memberBytes decodes a JSON string token (checked by scanString) as Go's
// encoding/json does: a raw byte that starts no valid UTF-8 sequence, and
// an escaped surrogate that is not the first of a pair with the escape
// after it, each become U+FFFD; nothing is refused.
function memberBytes(tok) {
  const out = [];
  const end = tok.length - 1; // the closing quote
  for (let i = 1; i < end;) {
    const c = tok[i];
    if (c === 0x5c) {
      const e = tok[i + 1];
      if (e !== 0x75) {
        out.push(e === 0x62 ? 0x08 : e === 0x66 ? 0x0c : e === 0x6e ? 0x0a : e === 0x72 ? 0x0d : e === 0x74 ? 0x09 : e);
        i += 2;
        continue;
      }
      let r = hexAt(tok, i + 2);
      i += 6;
      if (r >= 0xd800 && r < 0xe000) {
        const r2 = i + 6 <= end && tok[i] === 0x5c && tok[i + 1] === 0x75 ? hexAt(tok, i + 2) : -1;
        if (r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000) {
          r = 0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00);
          i += 6;
        } else {
          r = 0xfffd;
        }
      }
      pushUTF8(out, r);
      continue;
    }
    const n = c < 0x80 ? 1 : utf8SequenceLength(tok, i, end);
    if (n === 0) {
      out.push(0xef, 0xbf, 0xbd);
      i++;
      continue;
    }
    for (let k = 0; k < n; k++) out.push(tok[i + k]);
    i += n;
  }
  return Uint8Array.from(out);
}

// utf8SequenceLength is the length of the valid UTF-8 sequence of a rune
// from U+0080 that starts at b[i] (before end), or 0 when there is none
// (utf8.DecodeRune's RuneError of size 1).
function utf8SequenceLength(b, i, end) {
  const c = b[i];
  let n;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) n = 3;
  else if (c >= 0xf0 && c <= 0xf4) n = 4;
  else return 0;
  if (c === 0xe0) lo = 0xa0;
  else if (c === 0xed) hi = 0x9f;
  else if (c === 0xf0) lo = 0x90;
  else if (c === 0xf4) hi = 0x8f;
  if (i + n > end) return 0;
  if (b[i + 1] < lo || b[i + 1] > hi) return 0;
  for (let k = 2; k < n; k++) {
    if (b[i + k] < 0x80 || b[i + k] > 0xbf) return 0;
  }
  return n;
}

function memberString(tok) {
  return text(memberBytes(tok));
}

// decodeDocumentBase64 decodes the one form document_base64 has
// (docs/FORMATS.md §7): a JSON string of standard base64 with padding,
// without line breaks, its unused bits zero.
function decodeDocumentBase64(raw) {
  if (raw[0] !== 0x22) malformed('bundle field "document_base64" must be a string');
  const out = decodeBase64(memberBytes(raw), true);
  if (out === null) malformed('bundle field "document_base64" is not standard base64 with padding, on one line, its unused bits zero');
  return out;
}

// ---------------------------------------------------------------------------
// Keys and policy.

const PRIVATE_PREFIX = textEncoder.encode('PRIVATE+KEY+');
const GO_SPACE_SEQUENCES = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
  0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000].map((r) => {
  const b = [];
  pushUTF8(b, r);
  return b;
});

// trimGoSpace is strings.TrimSpace on bytes.
function trimGoSpace(b) {
  let start = 0;
  let end = b.length;
  for (let again = true; again && start < end;) {
    again = false;
    for (const seq of GO_SPACE_SEQUENCES) {
      if (end - start >= seq.length && seq.every((c, k) => b[start + k] === c)) {
        start += seq.length;
        again = true;
        break;
      }
    }
  }
  for (let again = true; again && start < end;) {
    again = false;
    for (const seq of GO_SPACE_SEQUENCES) {
      if (end - start >= seq.length && seq.every((c, k) => b[end - seq.length + k] === c)) {
        end -= seq.length;
        again = true;
        break;
      }
    }
  }
  return b.subarray(start, end);
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', parts.length === 1 ? parts[0] : concat(...parts)));
}

async function keyHash(name, key) {
  const h = await sha256(name, new Uint8Array([0x0a]), key);
  return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
}

/**
 * parseKeys reads a keys file as notary.ParseVerifierKeys does: one
 * verifier key `name+hash+base64key` per line; blank lines and lines that
 * start with # are ignored. It returns a key set for verifyBundle and throws
 * a PolicyError naming the line that is not a verifier key.
 */
export async function parseKeys(keysText) {
  const b = toBytes(keysText, 'keys');
  if (typeof crypto === 'undefined' || !crypto.subtle) {
    throw new Error('this browser offers no WebCrypto here; open the page over https');
  }
  const keys = [];
  let p = 0;
  for (let n = 1; p < b.length; n++) {
    let q = b.indexOf(0x0a, p);
    if (q < 0) q = b.length;
    let line = b.subarray(p, q);
    p = q + 1;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    line = trimGoSpace(line);
    if (line.length === 0 || line[0] === 0x23) continue;
    if (startsWith(line, PRIVATE_PREFIX)) {
      throw new PolicyError(`line ${n} is a private signer key; give the verifier (.pub) key instead, and keep the private one secret`);
    }
    keys.push(await parseVerifierKey(line, n));
  }
  if (keys.length === 0) throw new PolicyError('no verifier keys found');
  return { keys };
}

async function parseVerifierKey(line, n) {
  try {
    return await noteVerifierKey(line);
  } catch (e) {
    if (e instanceof KeyError) throw new PolicyError(`line ${n}: not a verifier key: ${e.message}`);
    throw e;
  }
}

// KeyError says why a key text is not a key: the note package's words.
class KeyError extends Error {}

// splitKey splits "name+hash+key" as the note package does.
function splitKey(line) {
  let plus = line.indexOf(0x2b);
  const nameBytes = plus < 0 ? line : line.subarray(0, plus);
  const rest = plus < 0 ? new Uint8Array(0) : line.subarray(plus + 1);
  plus = rest.indexOf(0x2b);
  const hash16 = plus < 0 ? rest : rest.subarray(0, plus);
  const key64 = plus < 0 ? new Uint8Array(0) : rest.subarray(plus + 1);
  return { nameBytes, hash16, key64, complete: plus >= 0 && line.indexOf(0x2b) >= 0 };
}

async function importEd25519(raw) {
  try {
    return await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    throw new KeyError(`this browser cannot use the key (${e.message || e.name})`);
  }
}

// noteVerifierKey parses a note verifier key (note.NewVerifier).
async function noteVerifierKey(line) {
  const { nameBytes, hash16, key64 } = splitKey(line);
  const key = decodeBase64(key64, false);
  const hashOK = hash16.length === 8 && hash16.every((c) => anyHexValue(c) >= 0);
  if (!hashOK || key === null || !utf8Valid(nameBytes) || !isValidKeyName(text(nameBytes)) || key.length === 0) {
    throw new KeyError('malformed verifier id');
  }
  const name = text(nameBytes);
  const hash = parseInt(ascii(hash16), 16) >>> 0;
  if (hash !== (await keyHash(nameBytes, key))) throw new KeyError('invalid verifier hash');
  if (key[0] !== 1) throw new KeyError('unknown verifier algorithm');
  if (key.length !== 33) throw new KeyError('malformed verifier id');
  const cryptoKey = await importEd25519(key.subarray(1));
  return { name, hash, cryptoKey, line: text(line), kind: 'node' };
}

// cosignatureVerifierKey parses a witness's cosignature/v1 verifier key
// (notary.NewCosignatureVerifier): algorithm 0x04.
async function cosignatureVerifierKey(line) {
  const { nameBytes, hash16, key64, complete } = splitKey(line);
  const key = decodeBase64(key64, false);
  const hashOK = hash16.length === 8 && hash16.every((c) => anyHexValue(c) >= 0);
  if (!complete || !hashOK || key === null || !utf8Valid(nameBytes) || !isValidKeyName(text(nameBytes)) || key.length === 0) {
    throw new KeyError('malformed verifier id');
  }
  if (key[0] !== 4) throw new KeyError('unknown verifier algorithm');
  if (key.length !== 33) throw new KeyError('malformed verifier id');
  const hash = parseInt(ascii(hash16), 16) >>> 0;
  if (hash !== (await keyHash(nameBytes, key))) throw new KeyError('invalid verifier hash');
  const cryptoKey = await importEd25519(key.subarray(1));
  return { name: text(nameBytes), hash, cryptoKey, line: text(line), kind: 'witness' };
}

// makePolicy checks a policy as notary.Policy.Validate does, or takes a
// policy file parsed by parsePolicy.
async function makePolicy(keys, opts) {
  if (keys instanceof TrustPolicy) return keys.rules;
  const set = keys && Array.isArray(keys.keys) ? keys : await parseKeys(keys);
  const names = new Set();
  const byID = new Map();
  for (const k of set.keys) {
    if (names.has(k.name)) throw new PolicyError(`policy: two trusted keys named ${JSON.stringify(k.name)}`);
    names.add(k.name);
    byID.set(`${k.name}\n${k.hash}`, { ...k, kind: 'node', from: 0n, until: MAX_UINT64 });
  }
  let min = opts.minSignatures ?? 0;
  if (typeof min === 'string') min = min.trim() === '' ? 0 : Number(min);
  if (!Number.isInteger(min) || min < 0 || min > set.keys.length) {
    throw new PolicyError(`policy: requires ${opts.minSignatures} signatures but trusts ${set.keys.length} keys`);
  }
  const origin = opts.origin ?? '';
  if (origin !== '') {
    const err = originError(textEncoder.encode(origin));
    if (err) throw new PolicyError(`policy: ${err}`);
  }
  return { names, byID, min: Math.max(min, 1), origin, ranges: false, witnesses: [], groups: [], quorum: '', minCosignatures: 0 };
}

// ---------------------------------------------------------------------------
// Trust policy files (notary.ParsePolicy, docs/FORMATS.md §9).

const MAX_POLICY_SIZE = 64 << 10;
const MAX_POLICY_LINE = 1024;
const MAX_POLICY_NODES = 64;
const MAX_POLICY_WITNESSES = 64;
const MAX_POLICY_GROUPS = 64;
const MAX_POLICY_NAME = 64;
const PRIVATE_KEY_TEXT = 'PRIVATE+KEY+';
const POLICY_USAGE = {
  origin: 'origin <origin>',
  node: 'node <verifier key> [from <size>] [until <size>]',
  'node-signatures': 'node-signatures <k>',
  witness: 'witness <name> <cosignature verifier key>',
  group: 'group <name> <k> <member>...',
  quorum: 'quorum <name or k>',
};

/**
 * TrustPolicy is a parsed policy file: pass it to verifyBundle in place of
 * keys. fingerprint is the hex SHA-256 of its canonical text; nodes and
 * witnesses name what it trusts.
 */
export class TrustPolicy {
  constructor(rules, canonical, fingerprint) {
    this.rules = rules;
    this.canonical = canonical;
    this.fingerprint = fingerprint;
    this.origin = rules.origin;
    this.minSignatures = rules.min;
    this.nodes = [...rules.byID.values()].filter((k) => k.kind === 'node').map((k) => k.name);
    this.witnesses = rules.witnesses.map((w) => w.name);
  }
}

function policyFileError(line, field, msg) {
  let prefix = line === 0 ? 'policy: ' : `policy line ${line}: `;
  if (field !== '') prefix += `${field}: `;
  return new PolicyError(prefix + msg);
}

function isPolicyName(s) {
  return s.length >= 1 && s.length <= MAX_POLICY_NAME && /^[A-Za-z0-9._-]+$/.test(s);
}

function isDecimalText(s) {
  return /^[0-9]+$/.test(s);
}

// parsePolicyNumber reads a size: decimal, no sign, no leading zero, at most
// 2^64-1. It returns a BigInt or throws the reason as a string.
function parsePolicyNumber(s) {
  if (!isDecimalText(s) || (s.length > 1 && s[0] === '0')) throw `${goQuote(s)} is not a decimal number`;
  const n = BigInt(s);
  if (n > MAX_UINT64) throw `${goQuote(s)} is more than ${MAX_UINT64}`;
  return n;
}

function parsePolicyCount(s) {
  const n = parsePolicyNumber(s);
  if (n < 1n) throw 'must be at least 1';
  if (n > BigInt(MAX_POLICY_WITNESSES)) throw `${n} is more than ${MAX_POLICY_WITNESSES}`;
  return Number(n);
}

function compareBytes(a, b) {
  const x = textEncoder.encode(a);
  const y = textEncoder.encode(b);
  for (let i = 0; i < x.length && i < y.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * parsePolicy reads a trust policy file exactly as notary.ParsePolicy does
 * and resolves to a TrustPolicy. It rejects with a PolicyError whose message
 * is Go's: "policy line <n>: <field>: <why>" or "policy: <why>".
 */
export async function parsePolicy(policyText) {
  const b = toBytes(policyText, 'policy');
  if (typeof crypto === 'undefined' || !crypto.subtle) {
    throw new Error('this browser offers no WebCrypto here; open the page over https');
  }
  if (b.length > MAX_POLICY_SIZE) throw policyFileError(0, '', `file is ${b.length} bytes, more than ${MAX_POLICY_SIZE}`);
  const lines = [];
  for (let n = 1, p = 0; p < b.length; n++) {
    let q = b.indexOf(0x0a, p);
    if (q < 0) q = b.length;
    let line = b.subarray(p, q);
    p = q + 1;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > MAX_POLICY_LINE) throw policyFileError(n, '', `line is ${line.length} bytes, more than ${MAX_POLICY_LINE}`);
    if (!utf8Valid(line)) throw policyFileError(n, '', 'not valid UTF-8');
    for (const c of line) {
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw policyFileError(n, '', `control character 0x${c.toString(16).padStart(2, '0')}`);
    }
    const fields = text(line).split(/[ \t]+/).filter((f) => f !== '');
    if (fields.length === 0 || fields[0].startsWith('#')) continue;
    lines.push({ n, fields });
  }
  const st = {
    origin: '', originLine: 0, nodes: [], sigs: 0, sigsLine: 0, witnesses: [], groups: [],
    defined: new Map(), quorum: '', quorumLine: 0,
  };
  for (const l of lines) await policyLine(st, l);
  return finishPolicy(st);
}

async function policyLine(st, { n, fields }) {
  const [kw, ...args] = fields;
  const bad = (field, msg) => policyFileError(n, field, msg);
  if (!Object.hasOwn(POLICY_USAGE, kw)) throw bad('', `unknown keyword ${goQuote(kw)}`);
  const wrongFields = () => bad(kw, `want ${goQuote(POLICY_USAGE[kw])}`);
  const num = (field, f, s) => {
    try {
      return f(s);
    } catch (why) {
      if (typeof why === 'string') throw bad(field, why);
      throw why;
    }
  };
  const define = (field, name) => {
    if (!isPolicyName(name)) throw bad(field, `${goQuote(name)} is not a name (1 to ${MAX_POLICY_NAME} of A-Z a-z 0-9 . _ -)`);
    if (isDecimalText(name)) throw bad(field, `${goQuote(name)} is a number; a name needs a character other than a digit`);
    if (st.defined.has(name)) throw bad(field, `${goQuote(name)} is already defined on line ${st.defined.get(name)}`);
  };
  const key = async (field, parse, what, s) => {
    if (s.startsWith(PRIVATE_KEY_TEXT)) throw bad(field, 'a private signer key; give its verifier key, and keep the private one secret');
    try {
      return await parse(textEncoder.encode(s));
    } catch (e) {
      if (e instanceof KeyError) throw bad(field, `not a ${what}: ${e.message}`);
      throw e;
    }
  };
  switch (kw) {
    case 'origin': {
      if (args.length !== 1) throw wrongFields();
      if (st.originLine !== 0) throw bad(kw, `a second origin line (the first is line ${st.originLine})`);
      const err = originError(textEncoder.encode(args[0]));
      if (err) throw bad(kw, err);
      st.origin = args[0];
      st.originLine = n;
      break;
    }
    case 'node': {
      if (args.length !== 1 && args.length !== 3 && args.length !== 5) throw wrongFields();
      if (st.nodes.length === MAX_POLICY_NODES) throw bad(kw, `more than ${MAX_POLICY_NODES} node lines`);
      const k = await key('node key', noteVerifierKey, 'note verifier key', args[0]);
      let from = 0n;
      let until = MAX_UINT64;
      const given = {};
      for (let i = 1; i < args.length; i += 2) {
        const opt = args[i];
        if (opt !== 'from' && opt !== 'until') throw bad(kw, `unknown option ${goQuote(opt)} (want from or until)`);
        if (given[opt]) throw bad(`node ${opt}`, 'given twice');
        given[opt] = true;
        const v = num(`node ${opt}`, parsePolicyNumber, args[i + 1]);
        if (opt === 'from') from = v;
        else until = v;
      }
      if (from > until) throw bad('node until', `${until} is below from ${from}`);
      for (const o of st.nodes) {
        if (o.text === args[0]) throw bad('node key', `the same key as line ${o.line}`);
        if (o.key.name === k.name && o.key.hash === k.hash) throw bad('node key', `the same name and key hash as line ${o.line}`);
        if (o.key.name === k.name && from <= o.until && o.from <= until) {
          throw bad('node key', `a second key named ${goQuote(k.name)} valid at log sizes of line ${o.line}'s; give them from and until ranges apart`);
        }
      }
      st.nodes.push({ text: args[0], key: k, from, until, line: n });
      break;
    }
    case 'node-signatures': {
      if (args.length !== 1) throw wrongFields();
      if (st.sigsLine !== 0) throw bad(kw, `a second node-signatures line (the first is line ${st.sigsLine})`);
      st.sigs = num(kw, parsePolicyCount, args[0]);
      st.sigsLine = n;
      break;
    }
    case 'witness': {
      if (args.length !== 2) throw wrongFields();
      if (st.witnesses.length === MAX_POLICY_WITNESSES) throw bad(kw, `more than ${MAX_POLICY_WITNESSES} witness lines`);
      define('witness name', args[0]);
      const k = await key('witness key', cosignatureVerifierKey, 'cosignature/v1 verifier key', args[1]);
      for (const w of st.witnesses) {
        if (w.text === args[1]) throw bad('witness key', `the same key as line ${w.line}`);
        if (w.key.name === k.name && w.key.hash === k.hash) throw bad('witness key', `the same name and key hash as line ${w.line}`);
      }
      for (const o of st.nodes) {
        if (o.key.name === k.name && o.key.hash === k.hash) throw bad('witness key', `the same name and key hash as the node key of line ${o.line}`);
      }
      st.defined.set(args[0], n);
      st.witnesses.push({ name: args[0], text: args[1], key: k, line: n });
      break;
    }
    case 'group': {
      if (args.length < 3) throw wrongFields();
      if (st.groups.length === MAX_POLICY_GROUPS) throw bad(kw, `more than ${MAX_POLICY_GROUPS} group lines`);
      const [name, kText, ...members] = args;
      define('group name', name);
      const k = num(`group ${name} threshold`, parsePolicyCount, kText);
      members.forEach((m, i) => {
        if (!st.defined.has(m)) throw bad(`group ${name} member`, `${goQuote(m)} is not a witness or group defined above`);
        if (members.slice(0, i).includes(m)) throw bad(`group ${name} member`, `${goQuote(m)} is listed twice`);
      });
      if (k > members.length) throw bad(`group ${name} threshold`, `${k} is more than its ${members.length} members`);
      st.defined.set(name, n);
      st.groups.push({ name, threshold: k, members });
      break;
    }
    case 'quorum': {
      if (args.length !== 1) throw wrongFields();
      if (st.quorumLine !== 0) throw bad(kw, `a second quorum line (the first is line ${st.quorumLine})`);
      st.quorum = args[0];
      st.quorumLine = n;
      break;
    }
  }
}

async function finishPolicy(st) {
  if (st.originLine === 0) throw policyFileError(0, '', 'no origin line');
  if (st.nodes.length === 0) throw policyFileError(0, '', 'no node line');
  if (st.sigsLine === 0) throw policyFileError(0, '', 'no node-signatures line');
  const names = new Set(st.nodes.map((o) => o.key.name));
  if (st.sigs > names.size) throw policyFileError(st.sigsLine, 'node-signatures', `${st.sigs} required but the policy trusts ${names.size} nodes`);
  if (st.witnesses.length > 0 && st.quorumLine === 0) throw policyFileError(0, '', 'witnesses are listed but there is no quorum line');
  if (st.witnesses.length === 0 && st.quorumLine !== 0) throw policyFileError(st.quorumLine, 'quorum', 'no witness is listed');
  let quorum = '';
  let minCosignatures = 0;
  if (st.quorumLine !== 0) {
    if (isDecimalText(st.quorum)) {
      try {
        minCosignatures = parsePolicyCount(st.quorum);
      } catch (why) {
        if (typeof why === 'string') throw policyFileError(st.quorumLine, 'quorum', why);
        throw why;
      }
      if (minCosignatures > st.witnesses.length) {
        throw policyFileError(st.quorumLine, 'quorum', `${minCosignatures} cosignatures required but the policy lists ${st.witnesses.length} witnesses`);
      }
    } else {
      if (!st.defined.has(st.quorum)) throw policyFileError(st.quorumLine, 'quorum', `${goQuote(st.quorum)} is not a witness or group`);
      quorum = st.quorum;
    }
  }
  const byID = new Map();
  for (const o of st.nodes) byID.set(`${o.key.name}\n${o.key.hash}`, { ...o.key, kind: 'node', from: o.from, until: o.until });
  for (const w of st.witnesses) byID.set(`${w.key.name}\n${w.key.hash}`, { ...w.key, kind: 'witness', witness: w.name });
  const rules = {
    names, byID, min: st.sigs, origin: st.origin, ranges: true,
    witnesses: st.witnesses.map((w) => ({ name: w.name })), groups: st.groups, quorum, minCosignatures,
  };
  // The canonical text (docs/FORMATS.md §9) and its SHA-256.
  let c = `origin ${st.origin}\n`;
  for (const o of [...st.nodes].sort((a, b) => compareBytes(a.text, b.text))) {
    c += `node ${o.text}`;
    if (o.from !== 0n) c += ` from ${o.from}`;
    if (o.until !== MAX_UINT64) c += ` until ${o.until}`;
    c += '\n';
  }
  c += `node-signatures ${st.sigs}\n`;
  for (const w of [...st.witnesses].sort((a, b) => compareBytes(a.name, b.name))) c += `witness ${w.name} ${w.text}\n`;
  for (const g of st.groups) c += `group ${g.name} ${g.threshold} ${[...g.members].sort(compareBytes).join(' ')}\n`;
  if (quorum !== '') c += `quorum ${quorum}\n`;
  else if (minCosignatures !== 0) c += `quorum ${minCosignatures}\n`;
  const canonical = textEncoder.encode(c);
  return new TrustPolicy(rules, canonical, hex(await sha256(canonical)));
}

// ---------------------------------------------------------------------------
// Checkpoints (notary.OpenCheckpoint, golang.org/x/mod/sumdb/note.Open).

const EM_DASH_SPACE = textEncoder.encode('\u2014 ');
const TIMESTAMP_PREFIX = 'timestamp ';
const DECIMAL = /^(0|[1-9][0-9]*)$/;

async function ed25519Verify(key, sig, msg) {
  if (sig.length !== 64 || (sig[63] & 224) !== 0) return false;
  try {
    return await crypto.subtle.verify({ name: 'Ed25519' }, key.cryptoKey, sig, msg);
  } catch {
    return false;
  }
}

async function openCheckpoint(msg, policy) {
  if (msg.length > MAX_CHECKPOINT_SIZE) malformed(`checkpoint is ${msg.length} bytes, more than ${MAX_CHECKPOINT_SIZE}`);
  let split = -1;
  for (let k = msg.length - 2; k >= 0; k--) {
    if (msg[k] === 0x0a && msg[k + 1] === 0x0a) {
      split = k;
      break;
    }
  }
  if (split < 0 || msg.length === split + 2 || msg[msg.length - 1] !== 0x0a) {
    malformed('checkpoint is not a signed note (no signature block)');
  }
  const body = msg.subarray(0, split + 1);
  const lines = [];
  for (let p = split + 2; p < msg.length;) {
    const q = msg.indexOf(0x0a, p);
    lines.push(msg.subarray(p, q));
    p = q + 1;
  }
  // A damaged signature line gets a more precise verdict than the note
  // package's "malformed": it is checked first.
  const parsed = lines.map((line, k) => {
    const prefixed = startsWith(line, EM_DASH_SPACE);
    const rest = prefixed ? line.subarray(EM_DASH_SPACE.length) : line;
    const space = rest.indexOf(0x20);
    const name = space < 0 ? rest : rest.subarray(0, space);
    const b64 = space < 0 ? new Uint8Array(0) : rest.subarray(space + 1);
    const sig = decodeBase64(b64, true);
    if (!prefixed || space < 0 || name.length === 0 || sig === null || sig.length < 5) {
      fail('signature invalid', `signature line ${k + 1} is damaged`);
    }
    return { rest, name, sig };
  });
  // The note as a whole: UTF-8 without control characters but newline.
  if (!utf8Valid(msg) || msg.some((c) => c < 0x20 && c !== 0x0a)) malformed('checkpoint note: malformed note');
  const verified = [];
  const unverified = [];
  const seen = new Set();
  const seenUnverified = new Set();
  let count = 0;
  for (const { rest, name: nameBytes, sig } of parsed) {
    const name = text(nameBytes);
    if (!isValidKeyName(name)) malformed('checkpoint note: malformed note');
    const hash = ((sig[0] << 24) | (sig[1] << 16) | (sig[2] << 8) | sig[3]) >>> 0;
    if (++count > MAX_SIGNATURE_LINES) malformed('checkpoint note: malformed note');
    const id = `${name}\n${hash}`;
    const key = policy.byID.get(id);
    if (key === undefined) {
      const lineID = text(rest);
      if (!seenUnverified.has(lineID)) {
        seenUnverified.add(lineID);
        unverified.push(name);
      }
      continue;
    }
    if (seen.has(id)) continue;
    seen.add(id);
    const ok = key.kind === 'witness' ? await cosignatureVerify(key, sig.subarray(4), body) : await ed25519Verify(key, sig.subarray(4), body);
    if (!ok) fail('signature invalid', `the signature by ${JSON.stringify(name)} does not verify`);
    verified.push(key);
  }
  for (const name of unverified) {
    if (policy.names.has(name)) fail('signature invalid', `the signature by ${JSON.stringify(name)} is not made with its trusted key`);
  }
  // Node names that signed: first at any size, then, with the body read,
  // by keys valid at its size (notary's openCheckpoint, in its order).
  let counted = countNodes(verified, null);
  enoughNodes(policy, counted, unverified, 0n);
  const cp = parseCheckpointBody(body);
  if (policy.ranges) {
    counted = countNodes(verified, cp.size);
    enoughNodes(policy, counted, unverified, cp.size);
  }
  const cosigners = [];
  for (const k of verified) if (k.kind === 'witness' && !cosigners.includes(k.witness)) cosigners.push(k.witness);
  checkQuorum(policy, cosigners);
  if (policy.origin !== '' && cp.origin !== policy.origin) {
    fail('wrong log', `checkpoint is from log ${JSON.stringify(cp.origin)}, policy expects ${JSON.stringify(policy.origin)}`);
  }
  cp.signers = counted.signers;
  cp.cosigners = cosigners;
  return cp;
}

// cosignatureVerify checks a cosignature/v1 (c2sp.org/tlog-cosignature):
// an 8-byte big-endian time, then the Ed25519 signature of
// "cosignature/v1\ntime <time>\n" and the checkpoint body.
async function cosignatureVerify(key, sig, body) {
  if (sig.length !== 72) return false;
  let t = 0n;
  for (let i = 0; i < 8; i++) t = (t << 8n) | BigInt(sig[i]);
  if (t > MAX_INT64) return false;
  return ed25519Verify(key, sig.subarray(8), concat(textEncoder.encode(`cosignature/v1\ntime ${t}\n`), body));
}

function countNodes(verified, size) {
  const signers = [];
  const retired = [];
  for (const k of verified) {
    if (k.kind !== 'node') continue;
    if (size !== null && !(k.from <= size && size <= k.until)) retired.push(k.name);
    else if (!signers.includes(k.name)) signers.push(k.name);
  }
  return { signers, retired };
}

function enoughNodes(policy, { signers, retired }, unverified, size) {
  if (signers.length >= policy.min) return;
  const q = (names) => names.map((n) => JSON.stringify(n)).join(', ');
  let detail = `${policy.min} node signatures required, ${signers.length} valid`;
  if (signers.length > 0) detail += ` (${q(signers)})`;
  else if (retired.length === 0) detail += `: no signature by a trusted key (signed by ${unverified.length ? q(unverified) : 'nobody'})`;
  if (retired.length > 0) detail += `; ${q(retired)} signed with a key not valid at size ${size}`;
  fail('too few trusted signatures', detail);
}

function checkQuorum(policy, cosigners) {
  if (policy.witnesses.length === 0) return;
  if (policy.quorum === '') {
    if (cosigners.length < policy.minCosignatures) {
      fail('too few trusted signatures', `witness quorum needs ${policy.minCosignatures} of ${policy.witnesses.length} witnesses, ${cosigners.length} valid`);
    }
    return;
  }
  const met = new Set(cosigners);
  const count = (g) => g.members.filter((m) => met.has(m)).length;
  for (const g of policy.groups) if (count(g) >= g.threshold) met.add(g.name);
  if (met.has(policy.quorum)) return;
  const g = policy.groups.find((x) => x.name === policy.quorum);
  if (g) fail('too few trusted signatures', `witness quorum ${g.name} needs ${g.threshold} of ${g.members.length}, ${count(g)} valid`);
  fail('too few trusted signatures', `witness quorum ${policy.quorum} needs its cosignature, none valid`);
}

// parseCheckpointBody accepts exactly the spelling notary.Checkpoint.Body
// writes: origin, size, base64 root and "timestamp <ms>", each on its line.
function parseCheckpointBody(body) {
  const bad = (why) => malformed(`checkpoint: ${why}`);
  const parts = [];
  for (let p = 0; p < body.length;) {
    let q = body.indexOf(0x0a, p);
    if (q < 0) q = body.length;
    parts.push(body.subarray(p, q));
    p = q + 1;
  }
  if (body[body.length - 1] !== 0x0a || parts.length !== 4) bad('is not four lines');
  const [originLine, sizeLine, rootLine, tsLine] = parts;
  const err = originError(originLine);
  if (err) bad(err);
  const size = ascii(sizeLine);
  if (!DECIMAL.test(size) || BigInt(size) > MAX_UINT64) bad('size is not a decimal number');
  const root = decodeBase64(rootLine, true);
  if (root === null || root.length !== 32 || encodeBase64(root) !== ascii(rootLine)) bad('root is not 32 bytes of base64');
  const tsText = ascii(tsLine);
  if (!tsText.startsWith(TIMESTAMP_PREFIX)) bad('lacks its "timestamp" line');
  const ts = tsText.slice(TIMESTAMP_PREFIX.length);
  if (!DECIMAL.test(ts) || BigInt(ts) > MAX_INT64) bad('timestamp is not a decimal number');
  return { origin: text(originLine), size: BigInt(size), root, timestamp: BigInt(ts) };
}

// ---------------------------------------------------------------------------
// Merkle proofs (RFC 6962, as github.com/transparency-dev/merkle/proof).

function bitLen(x) {
  return x === 0n ? 0 : x.toString(2).length;
}

function onesCount(x) {
  let n = 0;
  for (const c of x.toString(2)) if (c === '1') n++;
  return n;
}

function trailingZeros(x) {
  return x === 0n ? 64 : (x & -x).toString(2).length - 1;
}

function hashChildren(l, r) {
  return sha256(new Uint8Array([1]), l, r);
}

async function chainInner(seed, proof, index) {
  for (let k = 0; k < proof.length; k++) {
    seed = ((index >> BigInt(k)) & 1n) === 0n ? await hashChildren(seed, proof[k]) : await hashChildren(proof[k], seed);
  }
  return seed;
}

async function chainInnerRight(seed, proof, index) {
  for (let k = 0; k < proof.length; k++) {
    if (((index >> BigInt(k)) & 1n) === 1n) seed = await hashChildren(proof[k], seed);
  }
  return seed;
}

async function chainBorderRight(seed, proof) {
  for (const h of proof) seed = await hashChildren(h, seed);
  return seed;
}

function decompInclProof(index, size) {
  const inner = bitLen(index ^ (size - 1n));
  return [inner, onesCount(index >> BigInt(inner))];
}

async function rootFromInclusionProof(index, size, leafHash, proof) {
  const [inner, border] = decompInclProof(index, size);
  if (proof.length !== inner + border) fail('proof invalid', `wrong proof size ${proof.length}, want ${inner + border}`);
  const res = await chainInner(leafHash, proof.slice(0, inner), index);
  return chainBorderRight(res, proof.slice(inner));
}

// checkConsistency is notary.CheckConsistency.
async function checkConsistency(older, newer, proof) {
  if (newer.origin !== older.origin) fail('wrong log', `checkpoints of logs ${JSON.stringify(older.origin)} and ${JSON.stringify(newer.origin)}`);
  if (newer.size < older.size) {
    fail('inconsistent history', `the newer checkpoint has ${newer.size} leaves, fewer than the ${older.size} of the older`);
  }
  if (newer.timestamp < older.timestamp) {
    fail('inconsistent history', `the larger checkpoint is dated ${isoTime(newer.timestamp)}, before the smaller one's ${isoTime(older.timestamp)}`);
  }
  if (proof.length > MAX_PROOF_HASHES) fail('proof invalid', `consistency proof has ${proof.length} hashes, more than ${MAX_PROOF_HASHES}`);
  const forked = () => fail('inconsistent history', `the log's tree of size ${older.size} is not a prefix of its tree of size ${newer.size}`);
  const size1 = older.size;
  const size2 = newer.size;
  if (size1 === size2) {
    if (proof.length > 0 || !equalBytes(older.root, newer.root)) forked();
    return;
  }
  if (size1 === 0n) {
    if (proof.length > 0) fail('proof invalid', `consistency proof: expected empty proof, but got ${proof.length} components`);
    return;
  }
  if (proof.length === 0) fail('proof invalid', 'consistency proof: empty proof');
  let [inner, border] = decompInclProof(size1 - 1n, size2);
  const shift = trailingZeros(size1);
  inner -= shift;
  let seed = proof[0];
  let start = 1;
  if (size1 === 1n << BigInt(shift)) {
    seed = older.root;
    start = 0;
  }
  if (proof.length !== start + inner + border) {
    fail('proof invalid', `consistency proof: wrong proof size ${proof.length}, want ${start + inner + border}`);
  }
  const rest = proof.slice(start);
  const mask = (size1 - 1n) >> BigInt(shift);
  let hash1 = await chainInnerRight(seed, rest.slice(0, inner), mask);
  hash1 = await chainBorderRight(hash1, rest.slice(inner));
  if (!equalBytes(hash1, older.root)) forked();
  let hash2 = await chainInner(seed, rest.slice(0, inner), mask);
  hash2 = await chainBorderRight(hash2, rest.slice(inner));
  if (!equalBytes(hash2, newer.root)) forked();
}

function parseConsistencyProof(proof) {
  let list = proof;
  if (typeof proof === 'string' || proof instanceof Uint8Array || proof instanceof ArrayBuffer) {
    try {
      list = JSON.parse(text(toBytes(proof, 'consistency proof')));
    } catch {
      malformed('the consistency proof is not a JSON list of hashes');
    }
  }
  if (!Array.isArray(list)) malformed('the consistency proof is not a list of hashes');
  return list.map((h, k) => {
    const b = typeof h === 'string' ? parseLowerHex(textEncoder.encode(h), 32) : null;
    if (b === null) malformed(`consistency proof entry ${k} is not 64 lowercase hex digits`);
    return b;
  });
}

// ---------------------------------------------------------------------------
// Verification.

const COMMIT_DOMAIN = textEncoder.encode('telenotary/commit/v1\0');

/** isoTime formats milliseconds since the epoch (a BigInt) as ISO 8601 UTC. */
export function isoTime(ms) {
  if (ms > 8640000000000000n) return `${ms} ms after 1970`;
  return new Date(Number(ms)).toISOString();
}

function leafBytes(r) {
  const b = new Uint8Array(1 + 74);
  b[0] = 0; // the RFC 6962 leaf prefix
  b[1] = 1; // leaf version
  b[2] = r.kind;
  b.set(r.commitment, 3);
  b.set(r.link, 35);
  let ts = r.timestamp;
  for (let k = 74; k >= 67; k--) {
    b[k] = Number(ts & 0xffn);
    ts >>= 8n;
  }
  return b;
}

function checkpointSummary(cp) {
  return {
    origin: cp.origin,
    size: cp.size.toString(),
    root: hex(cp.root),
    timestamp: cp.timestamp.toString(),
    time: isoTime(cp.timestamp),
    signers: cp.signers.slice(),
    cosigners: cp.cosigners.slice(),
  };
}

/**
 * verifyBundle checks a bundle as `telenotary verify BUNDLE` does.
 *
 * bundle: the bundle file (bytes, preferably, or text).
 * keys: the trusted verifier keys: a keys file's text or bytes, or the result
 *   of parseKeys; or a TrustPolicy from parsePolicy, whose rules (origin,
 *   node keys and their ranges, signatures required, witness quorum) then
 *   replace opts.minSignatures and opts.origin.
 * opts.minSignatures: how many distinct trusted keys must sign (0 or absent
 *   means 1). opts.origin: the only log accepted (absent means any).
 * opts.newerCheckpoint (a signed note) with opts.consistency (a list of hex
 *   hashes, or its JSON text): check also that this later checkpoint of the
 *   log extends the receipt's.
 * opts.status: a node's status answer about the bundle's prescription (GET
 *   /v1/prescriptions/{commitment}/status): when the bundle is valid, the
 *   result's status member says what verifyStatus says of the answer, with
 *   the bundle's commitment and salt (the allowance's lock must be the one
 *   the salt gives). It never changes the bundle's own verdict.
 *
 * It resolves to {valid: true, outcome: 'valid', origin, index, kind,
 * commitment, link, timestamp, time, checkpoint, signers, newer, document}
 * (index, size and timestamps are decimal strings, times ISO 8601 UTC;
 * cosigners names the policy's witnesses that cosigned), or to
 * {valid: false, outcome, reason, detail}, where outcome names the first
 * failed check as notary's errors do and reason is notary.Reason's sentence.
 * It rejects with a PolicyError when keys and options make no policy.
 */
export async function verifyBundle(bundle, keys, opts = {}) {
  const policy = await makePolicy(keys, opts);
  const bytes = toBytes(bundle, 'bundle');
  let parsed;
  let result;
  try {
    parsed = parseBundle(bytes);
    result = await verifyParsed(parsed, policy, opts);
  } catch (e) {
    if (e instanceof Failure) return failed(e);
    throw e;
  }
  if (opts.status !== undefined && opts.status !== null) {
    result.status = await statusOutcome(opts.status, policy, { commitment: parsed.receipt.commitment, salt: parsed.salt });
  }
  return result;
}

function failed(e) {
  return { valid: false, outcome: e.outcome, reason: REASONS[e.outcome], detail: e.detail };
}

// checkReceipt is steps 1 to 6 of notary's Verifier.Verify: the receipt is
// for the commitment want, its leaf hash is right, its checkpoint opens
// (with open) under the policy, is of its log and not older than the leaf,
// and the inclusion proof leads to the signed root. It returns the opened
// checkpoint.
async function checkReceipt(r, want, open) {
  if (!equalBytes(want, r.commitment)) {
    fail('commitment mismatch', `the document gives commitment ${hex(want)}, the receipt says ${hex(r.commitment)}`);
  }
  const leafHash = await sha256(leafBytes(r));
  if (!equalBytes(leafHash, r.leafHash)) {
    fail('leaf mismatch', `kind, commitment, link and timestamp hash to ${hex(leafHash)}, the receipt says ${hex(r.leafHash)}`);
  }
  const cp = await open(r.checkpoint);
  if (cp.origin !== r.origin) fail('wrong log', `receipt names log ${JSON.stringify(r.origin)}, its checkpoint ${JSON.stringify(cp.origin)}`);
  if (r.timestamp > cp.timestamp) {
    fail('inconsistent history', `leaf time ${isoTime(r.timestamp)} is after the time ${isoTime(cp.timestamp)} of the checkpoint that includes it`);
  }
  if (r.index >= cp.size) fail('proof invalid', `leaf index ${r.index} is not below the checkpoint's size ${cp.size}`);
  const root = await rootFromInclusionProof(r.index, cp.size, leafHash, r.inclusionProof);
  if (!equalBytes(root, cp.root)) fail('root mismatch', `the proof leads to root ${hex(root)}, the checkpoint signs ${hex(cp.root)}`);
  return cp;
}

async function verifyParsed(bundle, policy, opts) {
  const r = bundle.receipt;
  const want = await sha256(COMMIT_DOMAIN, bundle.salt, bundle.canonical);
  const cp = await checkReceipt(r, want, (msg) => openCheckpoint(msg, policy));
  let newer = null;
  if (opts.newerCheckpoint !== undefined && opts.newerCheckpoint !== null) {
    const proof = parseConsistencyProof(opts.consistency ?? []);
    const n = await openCheckpoint(toBytes(opts.newerCheckpoint, 'newer checkpoint'), policy);
    await checkConsistency(cp, n, proof);
    newer = checkpointSummary(n);
  }
  const linked = !equalBytes(r.link, ZERO32);
  return {
    valid: true,
    outcome: 'valid',
    origin: cp.origin,
    index: r.index.toString(),
    kind: KINDS[r.kind],
    commitment: hex(r.commitment),
    link: linked ? hex(r.link) : null,
    timestamp: r.timestamp.toString(),
    time: isoTime(r.timestamp),
    checkpoint: checkpointSummary(cp),
    signers: cp.signers.slice(),
    cosigners: cp.cosigners.slice(),
    minSignatures: policy.min,
    newer,
    document: { json: bundle.json, canonical: bundle.canonical },
  };
}

// ---------------------------------------------------------------------------
// A prescription's status (notary.PrescriptionStatus, notary.Verifier.VerifyStatus).

const MAX_FILLS = 100;
const MAX_STATUS_SIZE = ((MAX_FILLS + 3) * MAX_RECEIPT_SIZE) / 4;
const CHAIN_SIZE = 30;
const DISPENSE_SEED_DOMAIN = textEncoder.encode('telenotary dispense seed v1\0');
const CHAIN_DOMAIN = textEncoder.encode('telenotary dispense chain v1\0');
const REVOCATION_DOMAIN = textEncoder.encode('telenotary revocation v1\0');

/** The states a status answer can establish (notary.StateActive and the others). */
export const STATES = Object.freeze(['active', 'dispensed', 'revoked', 'untracked']);

/**
 * verifyStatus checks a node's answer about a prescription's status (GET
 * /v1/prescriptions/{commitment}/status) as notary's Verifier.VerifyStatus
 * does: every receipt verifies under the trust (keys or a TrustPolicy, with
 * opts.minSignatures and opts.origin as for verifyBundle), all into one
 * checkpoint; the allowance, dispenses and revocation have their kinds and
 * link to the prescription, in log order after it; no more dispenses than
 * fills, none without an allowance, none after the revocation. With
 * opts.bundle (the prescription's bundle file), the answer must be about its
 * prescription and the allowance's lock the one its salt gives.
 *
 * It resolves to {valid: true, outcome: 'valid', state (one of STATES),
 * fillsAllowed, fillsUsed, dispensed (the ISO 8601 UTC time of each
 * dispense, in order), revokedAt (or null), commitment, prescriptionTime,
 * checkpoint} (the status holds as of checkpoint.time), or to {valid: false,
 * outcome, reason, detail} as verifyBundle does. It rejects with a
 * PolicyError when keys and options make no policy.
 */
export async function verifyStatus(status, keys, opts = {}) {
  const policy = await makePolicy(keys, opts);
  let bundle = null;
  if (opts.bundle !== undefined && opts.bundle !== null) {
    try {
      const b = parseBundle(toBytes(opts.bundle, 'bundle'));
      bundle = { commitment: b.receipt.commitment, salt: b.salt };
    } catch (e) {
      if (e instanceof Failure) return failed(e);
      throw e;
    }
  }
  return statusOutcome(status, policy, bundle);
}

async function statusOutcome(status, policy, bundle) {
  try {
    return await verifyStatusParsed(parseStatus(toBytes(status, 'status')), policy, bundle);
  } catch (e) {
    if (e instanceof Failure) return failed(e);
    throw e;
  }
}

const STATUS_FIELDS = ['version', 'commitment', 'state', 'fills_allowed', 'fills_used', 'prescription', 'allowance', 'dispenses', 'revocation'];

// parseStatus decodes a status answer as notary.ParsePrescriptionStatus
// does, strictly, as receipts and bundles are read: exactly the members of
// the version-1 form, each once, nothing after the object, null only for a
// missing allowance or revocation; more dispenses than MAX_FILLS, or a state
// and counts that disagree with the receipts, are refused. The checks come
// in Go's order, with its words, naming the member.
function parseStatus(b) {
  if (b.length > MAX_STATUS_SIZE) malformed(`status is ${b.length} bytes, more than ${MAX_STATUS_SIZE}`);
  const o = parseObject(b, 'status', STATUS_FIELDS);
  const version = statusUint(o, 'version');
  const commitment = statusCommitment(o);
  const state = statusString(o, 'state');
  const fillsAllowed = statusUint(o, 'fills_allowed');
  const fillsUsed = statusUint(o, 'fills_used');
  if (version !== 1n) malformed(`status field "version" is ${version}; this verifier reads version 1`);
  for (const name of ['prescription', 'allowance', 'dispenses', 'revocation']) {
    if (!o.has(name)) malformed(`status field ${JSON.stringify(name)} is missing`);
  }
  const receipt = (name, raw, nullable) => {
    if (nullable && ascii(raw) === 'null') return null;
    try {
      return parseReceipt(raw);
    } catch (e) {
      // Go wraps the receipt's error, sentinel and all: "status field
      // "allowance": malformed input: receipt ...".
      if (e instanceof Failure) malformed(`status field ${JSON.stringify(name)}: ${e.outcome}: ${e.detail}`);
      throw e;
    }
  };
  const prescription = receipt('prescription', o.get('prescription'), false);
  const allowance = receipt('allowance', o.get('allowance'), true);
  const revocation = receipt('revocation', o.get('revocation'), true);
  const raw = o.get('dispenses');
  if (raw[0] !== 0x5b) malformed('status field "dispenses" must be an array of receipts');
  const items = [];
  for (let i = skipWS(raw, 1); raw[i] !== 0x5d;) {
    const end = scanValue(raw, i);
    items.push(raw.subarray(i, end));
    i = skipWS(raw, end);
    if (raw[i] === 0x2c) i = skipWS(raw, i + 1);
  }
  if (items.length > MAX_FILLS) malformed(`status field "dispenses" holds ${items.length} receipts, more than ${MAX_FILLS}`);
  const dispenses = items.map((d, k) => receipt(`dispenses[${k}]`, d, false));
  const s = { commitment, prescription, allowance, dispenses, revocation };
  const [derived, allowed, used] = statusState(s);
  if (derived !== state || BigInt(allowed) !== fillsAllowed || BigInt(used) !== fillsUsed) {
    malformed(`status says ${state}, ${fillsUsed} of ${fillsAllowed} fills used; its receipts say ${derived}, ${used} of ${allowed}`);
  }
  return s;
}

// statusMember is notary's object.decode up to the value's type: the member
// is present and neither is nor holds null.
function statusMember(o, name) {
  const raw = o.get(name);
  if (raw === undefined) malformed(`status field ${JSON.stringify(name)} is missing`);
  if (holdsNull(raw)) malformed(`status field ${JSON.stringify(name)} is or holds null`);
  return raw;
}

// holdsNull reports whether a JSON value (valid, checked by scanValue) is
// or holds null: a literal that starts with n outside strings.
function holdsNull(raw) {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x22) i = scanString(raw, i) - 1;
    else if (raw[i] === 0x6e) return true;
  }
  return false;
}

// jsonValueKind is what encoding/json calls a JSON value that does not fit
// the Go type it decodes into (UnmarshalTypeError's Value).
function jsonValueKind(raw) {
  switch (raw[0]) {
    case 0x7b: return 'object';
    case 0x5b: return 'array';
    case 0x22: return 'string';
    case 0x74: case 0x66: return 'bool';
    default: return 'number';
  }
}

// statusUint decodes an int member: a whole number from 0 in its one
// spelling, at most the largest int64.
function statusUint(o, name) {
  const raw = statusMember(o, name);
  const t = ascii(raw);
  if (!/^(0|[1-9][0-9]*)$/.test(t)) {
    malformed(`status field ${JSON.stringify(name)} must be a whole number from 0 written without sign, fraction, exponent or leading zeros, not ${text(raw)}`);
  }
  const v = BigInt(t);
  if (v > MAX_INT64) malformed(`status field ${JSON.stringify(name)} must be a whole number, not number ${t}`);
  return v;
}

// statusString decodes a string member.
function statusString(o, name) {
  const raw = statusMember(o, name);
  if (raw[0] !== 0x22) malformed(`status field ${JSON.stringify(name)} must be a string, not ${jsonValueKind(raw)}`);
  return memberString(raw);
}

// statusCommitment decodes the commitment member as notary.Commitment's
// UnmarshalText does: a string of 64 lowercase hex digits.
function statusCommitment(o) {
  const raw = statusMember(o, 'commitment');
  if (raw[0] !== 0x22) malformed(`status field "commitment" must be a string, not ${jsonValueKind(raw)}`);
  const digits = memberBytes(raw);
  if (digits.length !== 64) malformed(`status field "commitment": want 64 lowercase hex digits, got ${digits.length} characters`);
  for (let k = 0; k < digits.length; k++) {
    const c = digits[k];
    if (!(c >= 0x30 && c <= 0x39) && !(c >= 0x61 && c <= 0x66)) {
      malformed(`status field "commitment": character ${k} is ${goQuote(String.fromCharCode(c), "'")}, not a lowercase hex digit`);
    }
  }
  return parseLowerHex(digits, 32);
}

// parseAllowance decodes an allowance leaf's commitment (notary.ParseAllowance):
// the fills allowed (2 bytes, big-endian), then the lock. It returns the
// reason it cannot when the fills are out of range.
function parseAllowance(c) {
  const fills = (c[0] << 8) | c[1];
  if (fills < 1 || fills > MAX_FILLS) return { error: `malformed input: allowance of ${fills} fills; 1 to ${MAX_FILLS} are allowed` };
  return { fills, lock: c.subarray(2) };
}

// statusState derives the state and counts from the receipts an answer holds
// (notary.PrescriptionStatus.State), unverified.
function statusState(s) {
  const used = s.dispenses.length;
  let allowed = 0;
  if (s.allowance !== null) {
    const a = parseAllowance(s.allowance.commitment);
    if (!a.error) allowed = a.fills;
  }
  if (s.revocation !== null) return ['revoked', allowed, used];
  if (s.allowance === null) return ['untracked', 0, used];
  if (used >= allowed) return ['dispensed', allowed, used];
  return ['active', allowed, used];
}

// dispenseSeed is notary.DispenseSeed: HMAC-SHA-256 keyed with the salt
// over a domain and the prescription's commitment, cut to 30 bytes.
async function dispenseSeed(salt, c) {
  const key = await crypto.subtle.importKey('raw', salt, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, concat(DISPENSE_SEED_DOMAIN, c)));
  return mac.subarray(0, CHAIN_SIZE);
}

// allowanceLock is the lock of n fills (notary.NewAllowance): n steps of the
// dispense chain (notary.ChainStep) from the seed.
async function allowanceLock(salt, c, n) {
  let v = await dispenseSeed(salt, c);
  for (let k = 0; k < n; k++) v = (await sha256(CHAIN_DOMAIN, v)).subarray(0, CHAIN_SIZE);
  return v;
}

/** revocationCommitment is notary.RevocationCommitment: the commitment of a prescription's revocation leaf. */
export async function revocationCommitment(c) {
  return sha256(REVOCATION_DOMAIN, toBytes(c, 'commitment'));
}

async function verifyStatusParsed(s, policy, bundle) {
  const c = s.commitment;
  if (bundle !== null && !equalBytes(bundle.commitment, c)) {
    fail('commitment mismatch', `the status is about ${hex(c)}, the bundle's prescription is ${hex(bundle.commitment)}`);
  }
  // Opened checkpoints, by their text: as notary's Verifier, each is
  // checked once.
  const opened = new Map();
  const open = (msg) => {
    const key = ascii(msg);
    if (!opened.has(key)) opened.set(key, openCheckpoint(msg, policy));
    return opened.get(key);
  };
  const check = async (name, r, want, kind, link) => {
    let cp;
    try {
      if (equalBytes(want, ZERO32)) malformed('neither a document nor a commitment to check the receipt against');
      cp = await checkReceipt(r, want, open);
    } catch (e) {
      if (e instanceof Failure) fail(e.outcome, `${name}: ${e.detail}`);
      throw e;
    }
    if (r.kind !== kind) malformed(`${name}: a leaf of kind ${KINDS[r.kind]}, want ${KINDS[kind]}`);
    if (kind !== KIND_PRESCRIPTION && !equalBytes(r.link, link)) {
      malformed(`${name}: links to ${hex(r.link)}, not to the prescription ${hex(link)}`);
    }
    if (!equalBytes(r.checkpoint, s.prescription.checkpoint)) malformed(`${name}: proven into another checkpoint than the prescription's`);
    return cp;
  };

  const p = s.prescription;
  const cp = await check('prescription', p, c, KIND_PRESCRIPTION, ZERO32);
  let allowed = 0;
  let after = p.index;
  if (s.allowance !== null) {
    const r = s.allowance;
    await check('allowance', r, r.commitment, KIND_ALLOWANCE, c);
    const a = parseAllowance(r.commitment);
    if (a.error) malformed(`allowance: ${a.error}`);
    if (bundle !== null && !equalBytes(await allowanceLock(bundle.salt, c, a.fills), a.lock)) {
      fail('commitment mismatch', "allowance: its lock is not the one the bundle's salt gives");
    }
    if (r.index <= after) fail('inconsistent history', `allowance at index ${r.index} is not after its prescription at ${after}`);
    allowed = a.fills;
    after = r.index;
  } else if (s.dispenses.length > 0) {
    fail('inconsistent history', `${s.dispenses.length} dispenses of a prescription without an allowance`);
  }
  if (s.dispenses.length > allowed) fail('inconsistent history', `${s.dispenses.length} dispenses of a prescription that allows ${allowed}`);
  const dispensed = [];
  for (const [k, d] of s.dispenses.entries()) {
    await check(`dispenses[${k}]`, d, d.commitment, KIND_DISPENSE, c);
    if (d.index <= after) fail('inconsistent history', `dispenses[${k}] at index ${d.index} is not after index ${after}`);
    after = d.index;
    dispensed.push(isoTime(d.timestamp));
  }
  let revokedAt = null;
  if (s.revocation !== null) {
    const r = s.revocation;
    await check('revocation', r, await revocationCommitment(c), KIND_REVOCATION, c);
    if (r.index <= p.index) fail('inconsistent history', `revocation at index ${r.index} is not after its prescription at ${p.index}`);
    const n = s.dispenses.length;
    if (n > 0 && s.dispenses[n - 1].index > r.index) {
      fail('inconsistent history', `a dispense at index ${s.dispenses[n - 1].index} after the revocation at ${r.index}`);
    }
    revokedAt = isoTime(r.timestamp);
  }
  const [state] = statusState(s);
  return {
    valid: true,
    outcome: 'valid',
    state,
    fillsAllowed: allowed,
    fillsUsed: s.dispenses.length,
    dispensed,
    revokedAt,
    commitment: hex(c),
    prescriptionTime: isoTime(p.timestamp),
    checkpoint: checkpointSummary(cp),
  };
}
