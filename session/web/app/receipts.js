// Receipts: checking the bundles the server hands out (session start and
// end records, prescriptions) with the offline verifier of /verify/, under
// the notary's keys from GET /v1/keys, and offering them for download.

let verifier = null; // a promise of the verifier's verifyBundle function
let keys = null; // a promise of the keys file text

function loadVerifier() {
  verifier ??= import('../verify/verify.js').then((mod) => {
    const fn = mod.verifyBundle ?? mod.default?.verifyBundle ?? (typeof mod.default === 'function' ? mod.default : null);
    if (typeof fn !== 'function') throw new Error('the verifier module has no verifyBundle');
    return fn;
  });
  verifier.catch(() => {
    verifier = null; // try again for the next bundle
  });
  return verifier;
}

/** loadKeys fetches the notary's verifier keys (once, then from memory). */
export function loadKeys() {
  keys ??= fetch('/v1/keys', { cache: 'no-store' }).then(async (resp) => {
    if (!resp.ok) throw new Error(`the server did not give the notary's keys (HTTP ${resp.status})`);
    return resp.text();
  });
  keys.catch(() => {
    keys = null;
  });
  return keys;
}

/**
 * verify checks a bundle and returns {valid, reason, kind, index,
 * timestamp, signers}. bundleText is the bundle's JSON exactly as the
 * server sent it (see rawMember); it is judged byte for byte, as
 * `telenotary verify` would judge the downloaded file. It never throws: a
 * bundle that cannot be checked is reported with valid false and the reason.
 * Options: minSignatures (default 1), origin (default any).
 */
export async function verify(bundleText, { minSignatures = 1, origin = '' } = {}) {
  let fn;
  let keysText;
  try {
    [fn, keysText] = await Promise.all([loadVerifier(), loadKeys()]);
  } catch (err) {
    return { valid: false, reason: `cannot be checked: ${err.message}` };
  }
  const opts = { minSignatures };
  if (origin) opts.origin = origin;
  try {
    const res = await fn(new TextEncoder().encode(bundleText), keysText, opts);
    if (res && res.valid === true) {
      return {
        valid: true, reason: '', kind: res.kind, index: res.index, timestamp: res.timestamp,
        signers: Array.isArray(res.signers) ? res.signers.map(String) : [],
      };
    }
    const parts = [res && res.outcome, res && res.reason].filter(Boolean);
    let reason = parts.join(': ') || 'the verifier refused the bundle';
    if (res && res.detail) reason += ` (${res.detail})`;
    return { valid: false, reason };
  } catch (err) {
    return { valid: false, reason: `cannot be checked: ${err && err.message ? err.message : err}` };
  }
}

/**
 * rawMember returns the text of a top-level member of a JSON object text,
 * exactly as written (null if it is absent or the text is not an object):
 * a bundle keeps the bytes the server sent, which parsing and writing it
 * again might change.
 */
export function rawMember(text, name) {
  let i = 0;
  const n = text.length;
  const space = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = () => {
    const start = i++;
    while (i < n) {
      if (text[i] === '\\') i += 2;
      else if (text[i++] === '"') return text.slice(start, i);
    }
    throw new Error('unterminated string');
  };
  const value = () => {
    space();
    const start = i;
    if (text[i] === '"') {
      string();
    } else if (text[i] === '{' || text[i] === '[') {
      let depth = 0;
      for (;;) {
        if (i >= n) throw new Error('unterminated value');
        const c = text[i];
        if (c === '"') {
          string();
          continue;
        }
        i++;
        if (c === '{' || c === '[') depth++;
        else if ((c === '}' || c === ']') && --depth === 0) break;
      }
    } else {
      while (i < n && !',}] \t\n\r'.includes(text[i])) i++;
    }
    return text.slice(start, i);
  };
  try {
    space();
    if (text[i++] !== '{') return null;
    for (;;) {
      space();
      if (text[i] !== '"') return null;
      const key = JSON.parse(string());
      space();
      if (text[i++] !== ':') return null;
      const v = value();
      if (key === name) return v;
      space();
      if (text[i++] !== ',') return null;
    }
  } catch {
    return null;
  }
}

/** describe returns what a bundle's receipt says: kind, index, time, link. */
export function describe(bundle) {
  const r = bundle && typeof bundle === 'object' && bundle.receipt && typeof bundle.receipt === 'object' ? bundle.receipt : {};
  return {
    kind: typeof r.kind === 'string' ? r.kind : '',
    index: Number.isSafeInteger(r.index) ? r.index : null,
    timestamp: Number.isSafeInteger(r.timestamp) ? r.timestamp : null,
    commitment: typeof r.commitment === 'string' ? r.commitment : '',
    link: typeof r.link === 'string' ? r.link : '',
  };
}

/** downloadURL returns an object URL of a bundle's text as a JSON file. */
export function downloadURL(bundleText) {
  const blob = new Blob([bundleText], { type: 'application/json' });
  return URL.createObjectURL(blob);
}

/** fileName names a bundle's download: prescription-12.json. */
export function fileName(kind, index) {
  const safe = String(kind || 'receipt').replace(/[^a-z0-9-]/gi, '');
  return `${safe || 'receipt'}-${index ?? 'x'}.json`;
}

/**
 * sameJSON reports whether two JSON values are equal as JSON (member order
 * aside): the physician checks that the notarized document is the one sent.
 */
export function sameJSON(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((v, i) => sameJSON(v, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameJSON(a[k], b[k]));
}

/** medicationOf names the medication of a MedicationRequest, for display. */
export function medicationOf(resource) {
  if (!resource || typeof resource !== 'object') return '';
  const c = resource.medicationCodeableConcept;
  if (c && typeof c === 'object') {
    if (typeof c.text === 'string' && c.text) return c.text;
    const coding = Array.isArray(c.coding) ? c.coding.find((x) => x && x.display) : null;
    if (coding) return String(coding.display);
  }
  const ref = resource.medicationReference;
  if (ref && typeof ref === 'object') {
    if (ref.display) return String(ref.display);
    if (typeof ref.reference === 'string' && ref.reference.startsWith('#') && Array.isArray(resource.contained)) {
      const med = resource.contained.find((x) => x && x.id === ref.reference.slice(1));
      const coding = med && med.code && Array.isArray(med.code.coding) ? med.code.coding.find((x) => x && x.display) : null;
      if (med && med.code && med.code.text) return String(med.code.text);
      if (coding) return String(coding.display);
    }
    if (ref.reference) return String(ref.reference);
  }
  return '';
}

/** statusOf returns a MedicationRequest's status (active, completed…). */
export function statusOf(resource) {
  return resource && typeof resource === 'object' && typeof resource.status === 'string' ? resource.status : '';
}

/**
 * dosageOf describes a MedicationRequest's dosage instructions, for
 * display: each instruction's text, or else its dose and frequency.
 */
export function dosageOf(resource) {
  const list = resource && typeof resource === 'object' && Array.isArray(resource.dosageInstruction) ? resource.dosageInstruction : [];
  const out = [];
  for (const d of list) {
    if (!d || typeof d !== 'object') continue;
    if (typeof d.text === 'string' && d.text) {
      out.push(d.text);
      continue;
    }
    const parts = [];
    const dose = Array.isArray(d.doseAndRate) ? d.doseAndRate.find((x) => x && x.doseQuantity) : null;
    if (dose) parts.push([dose.doseQuantity.value, dose.doseQuantity.unit].filter((x) => x !== undefined).join(' '));
    const r = d.timing && d.timing.repeat;
    if (r && r.frequency !== undefined) parts.push(`${r.frequency} time(s) per ${r.period ?? 1} ${r.periodUnit ?? ''}`.trim());
    if (typeof d.patientInstruction === 'string' && d.patientInstruction) parts.push(d.patientInstruction);
    if (parts.length) out.push(parts.join(', '));
  }
  return out.join('; ');
}
