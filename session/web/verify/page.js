// page.js: the /verify page. It reads a bundle file chosen, dropped or
// pasted, verifies it with verify.js in this browser, and shows the verdict.
// It asks its own server for two things only: the notary's keys, from
// ../v1/keys, and for a valid prescription its status, from
// ../v1/prescriptions/{commitment}/status (the notary's answer, relayed),
// which it verifies here as it does the bundle. The bundle is never sent
// anywhere; the commitment (the salted fingerprint the notary logged) is
// all the status request names.
//
// Trust comes from a pinned trust policy when the user gives one (a file,
// pasted text, or #policy=<text> in the address), shown with its
// fingerprint; otherwise from the keys this server serves, with a warning
// that this server could be the forger.

import { verifyBundle, parseKeys, parsePolicy, REASONS } from './verify.js';

const MAX_FILE = 4 << 20; // a larger file is not a bundle; verify.js says so

const $ = (id) => document.getElementById(id);

const state = {
  keys: null, // parsed keys, or null
  keysError: '', // why there are no keys
  keysSource: '', // 'server', 'file', 'pasted'
  serverKeys: null,
  policy: null, // a TrustPolicy the user pinned, or null
  policyError: '', // why the policy the user gave cannot be used
  policySource: '', // 'file', 'pasted', 'link'

  bundle: null, // {name, bytes}
  runs: 0, // verifications started; a later one supersedes an earlier one
  done: 0, // results shown
};

const KIND_NAMES = {
  'session-start': 'consultation record (start)',
  'session-end': 'consultation record (end)',
  prescription: 'prescription',
  consent: 'consent record',
  document: 'document',
  allowance: 'allowance (the fills a prescription allows)',
  dispense: 'dispense (a pharmacy\'s record of a fill)',
  revocation: 'revocation of a prescription',
};

const ADVICE = {
  'malformed input': 'Make sure you chose the bundle file (.json) that came with the document, not the document alone, and that it is complete.',
  'commitment mismatch': 'Do not rely on this document: it is not the one the notary recorded. Ask the issuer for the original.',
  'leaf mismatch': 'Do not rely on this receipt. Ask the issuer for an intact copy.',
  'proof invalid': 'Do not rely on this receipt. Ask the issuer for an intact copy.',
  'root mismatch': 'Do not rely on this receipt. Ask the issuer for an intact copy.',
  'signature invalid': 'Do not rely on this receipt. Ask the issuer for an intact copy.',
  'too few trusted signatures': 'The receipt may be genuine but is not signed by enough of the keys listed below. Check the trusted keys and the number of signatures required.',
  'inconsistent history': 'Do not rely on this receipt, and report it to the notary\'s operator.',
  'wrong log': 'The receipt comes from another notary than the one you accept. Check the log setting below.',
};

// ---------------------------------------------------------------------------
// Keys.

// OFFLINE: the page was saved and opened from disk (file://): it asks no
// server for anything.
const OFFLINE = location.protocol === 'file:';

async function loadServerKeys() {
  setKeysStatus('loading', 'Loading the notary\'s keys…');
  let textValue;
  try {
    const url = new URL('../v1/keys', document.baseURI);
    const resp = await fetch(url, { cache: 'no-store', credentials: 'same-origin', redirect: 'error' });
    if (!resp.ok) throw new Error(`the server answered ${resp.status} ${resp.statusText}`.trim());
    textValue = new Uint8Array(await resp.arrayBuffer());
  } catch (e) {
    state.serverKeys = null;
    useKeys(null, `Could not load the notary's keys (${e.message}). Load or paste a keys file under "Use other keys".`, 'server');
    return;
  }
  try {
    state.serverKeys = await parseKeys(textValue);
    useKeys(state.serverKeys, '', 'server');
  } catch (e) {
    state.serverKeys = null;
    useKeys(null, `The notary's keys could not be read: ${e.message}. Load or paste a keys file under "Use other keys".`, 'server');
  }
}

async function keysFromText(bytes, source) {
  try {
    useKeys(await parseKeys(bytes), '', source);
  } catch (e) {
    useKeys(null, `These keys cannot be used: ${e.message}.`, source);
  }
}

function useKeys(keys, error, source) {
  state.keys = keys;
  state.keysError = error;
  state.keysSource = source;
  const list = $('keys-list');
  list.replaceChildren();
  if (keys === null) {
    setKeysStatus('error', error);
  } else {
    const from = { server: 'from the notary', file: 'from the keys file you loaded', pasted: 'that you pasted', offline: '' }[source];
    const n = keys.keys.length;
    setKeysStatus('loaded', `${n} trusted key${n === 1 ? '' : 's'} ${from}:`);
    for (const k of keys.keys) {
      const li = document.createElement('li');
      li.textContent = k.name;
      li.title = k.line;
      list.append(li);
    }
  }
  showTrust();
  verify();
}

function setKeysStatus(kind, message) {
  document.body.dataset.keys = kind;
  const el = $('keys-status');
  el.textContent = message;
  el.className = `keys-status ${kind}`;
}

// ---------------------------------------------------------------------------
// The trust policy.

async function policyFromText(bytes, source) {
  state.policySource = source;
  try {
    state.policy = await parsePolicy(bytes);
    state.policyError = '';
  } catch (e) {
    state.policy = null;
    state.policyError = `This policy cannot be used: ${e.message}.`;
  }
  showTrust();
  verify();
}

function clearPolicy() {
  state.policy = null;
  state.policyError = '';
  state.policySource = '';
  showTrust();
  verify();
}

// trustLabel says where the verdict's trust comes from.
function trustLabel() {
  if (state.policy) return `pinned policy ${state.policy.fingerprint}`;
  if (state.keysSource === 'server') return 'keys from this server';
  if (state.keysSource === 'offline') return 'none yet (offline: choose a policy or keys file)';
  return 'keys you provided';
}

function showTrust() {
  const el = $('trust');
  const warning = $('trust-warning');
  const pinned = state.policy !== null || state.policyError !== '';
  $('min-signatures').disabled = pinned;
  $('origin').disabled = pinned;
  if (state.policyError) {
    el.dataset.source = 'error';
    el.textContent = state.policyError;
    warning.hidden = true;
    return;
  }
  if (state.policy) {
    const p = state.policy;
    const from = { file: 'from the file you loaded', pasted: 'that you pasted', link: 'from the address of this page' }[state.policySource];
    el.dataset.source = 'pinned';
    el.textContent = `Trust: pinned policy ${p.fingerprint} (${from}): log ${p.origin}, ${p.minSignatures} of ${new Set(p.nodes).size} nodes` +
      (p.witnesses.length ? `, witnesses ${p.witnesses.join(', ')}` : '') + '.';
    warning.hidden = true;
    return;
  }
  if (state.keys === null && document.body.dataset.keys === 'loading') {
    el.dataset.source = 'loading';
    el.textContent = 'Trust: loading…';
    warning.hidden = true;
    return;
  }
  el.dataset.source = state.keysSource === 'server' ? 'server' : 'keys';
  el.textContent = `Trust: ${trustLabel()}.`;
  warning.hidden = state.keysSource !== 'server';
}

// ---------------------------------------------------------------------------
// Bundles.

async function takeFile(file) {
  if (!file) return;
  const bytes = new Uint8Array(await file.slice(0, MAX_FILE + 1).arrayBuffer());
  state.bundle = { name: file.name, bytes };
  verify();
}

function takeText(textValue, name) {
  state.bundle = { name, bytes: new TextEncoder().encode(textValue) };
  verify();
}

async function verify() {
  if (state.bundle === null) return;
  const run = ++state.runs;
  const { name, bytes } = state.bundle;
  if (state.policyError) {
    show({ state: 'error', verdict: 'CANNOT CHECK', name, summary: state.policyError, advice: 'Load or paste the notary\'s published policy file again, or stop using a policy.' });
    return;
  }
  if (state.policy === null && state.keys === null) {
    if (document.body.dataset.keys === 'loading') return; // verified when the keys arrive
    show({ state: 'error', verdict: 'CANNOT CHECK', name, summary: 'There are no trusted notary keys to check the receipt against.', advice: state.keysError });
    return;
  }
  setResultState('verifying');
  $('verdict').textContent = 'Checking…';
  const opts = { minSignatures: minSignatures(), origin: $('origin').value.trim() };
  const trust = state.policy ?? state.keys;
  let r;
  try {
    r = await verifyBundle(bytes, trust, opts);
  } catch (e) {
    if (run !== state.runs) return;
    const message = e.name === 'PolicyError' ? `${e.message}.` : `The check could not run: ${e.message}`;
    show({ state: 'error', verdict: 'CANNOT CHECK', name, summary: message, advice: 'Check the trusted keys and the number of signatures required below.' });
    return;
  }
  if (run !== state.runs) return; // a newer check is under way
  if (r.valid) {
    showValid(r, name);
    if (r.kind === 'prescription') checkStatus(run, bytes, trust, opts, r.commitment);
  } else {
    showInvalid(r, name);
  }
}

function minSignatures() {
  const v = $('min-signatures').value.trim();
  if (v === '') return 1;
  const n = Number(v);
  return Number.isInteger(n) ? n : v;
}

// ---------------------------------------------------------------------------
// Results. Everything from the bundle goes into the page as text, never as HTML.

function setResultState(s) {
  $('result').dataset.state = s;
}

function show({ state: s, verdict, name, summary, advice = '', details = [], technical = '', document: doc = null }) {
  setResultState(s);
  $('verdict').textContent = verdict;
  $('file-name').textContent = name ? `in ${name}` : '';
  $('summary').textContent = summary;
  const adviceEl = $('advice');
  adviceEl.textContent = advice;
  adviceEl.hidden = advice === '';
  const dl = $('details');
  dl.replaceChildren(...details.flatMap(([field, label, value]) => row(field, label, value)));
  dl.hidden = details.length === 0;
  const tech = $('technical');
  tech.textContent = technical;
  tech.hidden = technical === '';
  showDocument(doc);
  showStatus(null);
  $('local-note').hidden = false;
  $('result').dataset.done = String(++state.done);
}

function row(field, label, value) {
  const dt = document.createElement('dt');
  dt.textContent = label;
  const dd = document.createElement('dd');
  dd.dataset.field = field;
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value;
  return [dt, dd];
}

function timeElement(iso) {
  const t = document.createElement('time');
  t.dateTime = iso;
  t.textContent = iso;
  t.title = friendlyTime(iso);
  return t;
}

// Times are shown in UTC, as receipts and telenotary verify give them,
// with this browser's local time in the row beside: the rule the page
// states under the result.
function localTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'long' });
}

function friendlyTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long', timeZone: 'UTC' });
}

function showValid(r, name) {
  const kind = KIND_NAMES[r.kind] || r.kind;
  const details = [
    ['time', 'Notarized at (UTC)', timeElement(r.time)],
    ['time-local', 'Notarized at (your time)', localTime(r.time)],
    ['kind', 'Kind', kind],
    ['signers', 'Signed by', r.signers.join(', ')],
    ...(r.cosigners.length ? [['witnesses', 'Cosigned by witnesses', r.cosigners.join(', ')]] : []),
    ['trust', 'Trust', trustLabel()],
    ['origin', 'Notary log', r.origin],
    ['index', 'Entry', `${r.index} (of ${r.checkpoint.size} in the signed log state)`],
    ['checkpoint-time', 'Log state signed at (UTC)', timeElement(r.checkpoint.time)],
    ['commitment', 'Fingerprint (commitment)', r.commitment],
  ];
  if (r.link) details.push(['link', 'Linked to record', r.link]);
  if (r.newer) details.push(['newer', 'Later log state checked', `${r.newer.size} entries, signed ${r.newer.time}`]);
  show({
    state: 'valid',
    verdict: 'VALID',
    name,
    summary: `This ${kind} was notarized on ${friendlyTime(r.time)} and has not been changed since. ` +
      (r.signers.length === 1 ? '1 trusted key vouches' : `${r.signers.length} trusted keys vouch`) + ` for it (${r.minSignatures} required).`,
    details,
    document: r.document,
  });
}

function showInvalid(r, name) {
  show({
    state: 'invalid',
    verdict: 'INVALID',
    name,
    summary: `${capitalize(r.reason || REASONS[r.outcome] || r.outcome)}.`,
    advice: ADVICE[r.outcome] || 'Do not rely on this receipt.',
    details: [['outcome', 'Failed check', r.outcome], ['trust', 'Trust', trustLabel()]],
    technical: r.detail ? `Technical detail: ${r.detail}` : '',
  });
}

// ---------------------------------------------------------------------------
// A prescription's status: how many of its fills were dispensed, whether it
// was revoked. The server relays the notary's answer; the answer carries a
// receipt for each entry that decides the status, all in one signed log
// state, and is verified here under the same trust as the bundle, so a
// server cannot make up fills or a revocation.

async function checkStatus(run, bytes, trust, opts, commitment) {
  if (OFFLINE) {
    showStatus({
      state: 'offline',
      line: 'Status not checked (offline)',
      note: 'This saved copy of the verifier asks no server, so it cannot tell whether the prescription was dispensed or revoked. The notary\'s verification page, online, can.',
    });
    return;
  }
  showStatus({ state: 'checking', line: 'Checking the prescription\'s status with the notary…' });
  let answer;
  try {
    // A consistent read, as telenotary verify asks: the answer includes
    // every fill the cluster has acknowledged.
    const url = new URL(`../v1/prescriptions/${commitment}/status?consistent=1`, document.baseURI);
    const resp = await fetch(url, { cache: 'no-store', credentials: 'same-origin', redirect: 'error' });
    if (!resp.ok) {
      // A 404 may be the notary's (it has not logged the prescription) or
      // a server's without the status route: both are not_found problems,
      // so the page does not tell them apart, and quotes the server.
      const why = await problemText(resp);
      if (run !== state.runs) return;
      showStatus({
        state: 'unchecked',
        line: `Status not checked (the server answered ${resp.status} ${resp.statusText}`.trim() + ')',
        note: 'Whether the prescription was dispensed or revoked is unknown.' + (why ? ` The server says: ${why}` : ''),
      });
      return;
    }
    answer = new Uint8Array(await resp.arrayBuffer());
  } catch (e) {
    if (run !== state.runs) return;
    showStatus({
      state: 'offline',
      line: 'Status not checked (offline)',
      note: `The notary could not be reached (${e.message}), so whether the prescription was dispensed or revoked is unknown.`,
    });
    return;
  }
  let r;
  try {
    r = await verifyBundle(bytes, trust, { ...opts, status: answer });
  } catch (e) {
    r = { status: { valid: false, outcome: 'error', reason: `the check could not run: ${e.message}`, detail: '' } };
  }
  if (run !== state.runs) return;
  const st = r.status;
  if (!st) return; // the bundle no longer verifies: its verdict is shown
  if (!st.valid) {
    showStatus({
      state: 'invalid',
      line: `Status answer INVALID: ${STATUS_REASONS[st.outcome] || st.reason || st.outcome}`,
      note: 'Do not rely on what this server says about the prescription\'s fills or revocation, and report it to the notary\'s operator.',
      technical: st.detail ? `Technical detail (${st.outcome}): ${st.detail}` : '',
    });
    return;
  }
  showStatus(statusView(st));
}

// problemText reads the reason of a refused request: the detail (or title)
// of a problem (RFC 9457) answer, or nothing.
async function problemText(resp) {
  try {
    const p = JSON.parse(await resp.text());
    const t = typeof p.detail === 'string' && p.detail ? p.detail : typeof p.title === 'string' ? p.title : '';
    return t.slice(0, 300);
  } catch {
    return '';
  }
}

// STATUS_REASONS word the failed checks whose receipt sentence would
// mislead about a status answer, as telenotary verify words them.
const STATUS_REASONS = {
  'malformed input': 'the answer is not a readable status answer',
  'commitment mismatch': 'the answer is not about this prescription, or its allowance was not made with the bundle\'s salt',
};

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// statusView says what a verified status answer established.
function statusView(st) {
  const asOf = `As of ${st.checkpoint.time}, the time of the notary's signed log state the answer is proven in.`;
  const fills = st.dispensed.map((t, k) => [`Fill ${k + 1} dispensed on `, t]);
  const allowed = st.fillsAllowed;
  const used = st.fillsUsed;
  switch (st.state) {
    case 'active':
      return {
        state: 'active',
        line: used === 0 ? `Status: active, none of its ${plural(allowed, 'fill')} used yet` : `Status: fill ${used} of ${allowed} used (${allowed - used} left)`,
        note: asOf,
        fills,
      };
    case 'dispensed':
      return { state: 'dispensed', line: `Status: fully dispensed (${allowed === 1 ? 'its one fill' : `all ${allowed} fills`} used)`, note: `No fill is left. ${asOf}`, fills };
    case 'revoked':
      return {
        state: 'revoked',
        line: 'Status: revoked on ',
        time: st.revokedAt,
        note: `Do not dispense it. ${used === 0 ? 'None' : used} of its ${plural(allowed, 'fill')} ${used === 1 ? 'was' : 'were'} used before the revocation. ${asOf}`,
        fills,
      };
    default:
      return {
        state: 'untracked',
        line: 'Status: not tracked',
        note: 'The prescription was notarized without a number of fills, so the notary does not track its dispensing or revocation.',
      };
  }
}

// showStatus shows a prescription's status under the verdict, or hides it
// (view null).
function showStatus(view) {
  const box = $('status');
  box.hidden = view === null;
  box.dataset.state = view === null ? 'none' : view.state;
  const line = $('status-line');
  const note = $('status-note');
  const list = $('status-fills');
  const tech = $('status-technical');
  line.replaceChildren();
  note.textContent = '';
  list.replaceChildren();
  tech.textContent = '';
  if (view === null) return;
  line.append(view.line);
  if (view.time) line.append(timeElement(view.time));
  note.textContent = view.note || '';
  note.hidden = !view.note;
  for (const [label, t] of view.fills || []) {
    const li = document.createElement('li');
    li.append(label, timeElement(t));
    list.append(li);
  }
  list.hidden = list.childElementCount === 0;
  tech.textContent = view.technical || '';
  tech.hidden = !view.technical;
}

function capitalize(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// showDocument shows what the receipt vouches for: a summary of a FHIR
// MedicationRequest, and the document itself.
function showDocument(doc) {
  const box = $('document');
  const summary = $('document-summary');
  const pre = $('document-text');
  summary.replaceChildren();
  pre.textContent = '';
  box.hidden = doc === null;
  if (doc === null) return;
  if (!doc.json) {
    summary.append(...row('document-type', 'Document', `${sniff(doc.canonical)}, ${doc.canonical.length} bytes (not JSON)`));
    pre.hidden = true;
    return;
  }
  pre.hidden = false;
  let value;
  try {
    value = JSON.parse(new TextDecoder().decode(doc.canonical));
  } catch {
    return;
  }
  pre.textContent = JSON.stringify(value, null, 2);
  for (const [field, label, v] of fhirSummary(value)) summary.append(...row(field, label, v));
}

function sniff(b) {
  const starts = (s) => s.split('').every((c, i) => b[i] === c.charCodeAt(0));
  if (starts('%PDF-')) return 'a PDF file';
  if (starts('\x89PNG')) return 'a PNG image';
  if (b[0] === 0xff && b[1] === 0xd8) return 'a JPEG image';
  return 'a file';
}

function fhirSummary(v) {
  if (v === null || typeof v !== 'object' || typeof v.resourceType !== 'string') return [];
  const out = [['resource', 'FHIR resource', `${v.resourceType}${typeof v.id === 'string' ? ` ${v.id}` : ''}`]];
  if (v.resourceType !== 'MedicationRequest') return out;
  const text = (cc) => cc && (cc.text || (Array.isArray(cc.coding) && cc.coding.map((c) => c.display || c.code).filter(Boolean).join(', ')));
  let medication = text(v.medicationCodeableConcept);
  if (!medication && v.medicationReference && typeof v.medicationReference.reference === 'string') {
    const ref = v.medicationReference.reference;
    const contained = Array.isArray(v.contained) ? v.contained.find((c) => c && `#${c.id}` === ref) : null;
    medication = (contained && text(contained.code)) || v.medicationReference.display || ref;
  }
  if (medication) out.push(['medication', 'Medication', String(medication)]);
  if (Array.isArray(v.dosageInstruction)) {
    const dosage = v.dosageInstruction.map((d) => d && d.text).filter((d) => typeof d === 'string');
    if (dosage.length) out.push(['dosage', 'Dosage', dosage.join('; ')]);
  }
  if (v.subject && typeof v.subject.display === 'string') out.push(['subject', 'Patient', v.subject.display]);
  if (v.requester && typeof v.requester.display === 'string') out.push(['requester', 'Prescriber', v.requester.display]);
  if (typeof v.authoredOn === 'string') out.push(['authored', 'Written on', v.authoredOn]);
  if (typeof v.status === 'string') out.push(['status', 'Status', v.status]);
  return out;
}

// ---------------------------------------------------------------------------
// Wiring.

function setup() {
  const params = new URLSearchParams(location.search);
  if (params.has('min')) $('min-signatures').value = params.get('min');
  if (params.has('origin')) $('origin').value = params.get('origin');

  if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
    setKeysStatus('error', 'This page must be opened over https: the browser offers no cryptography to pages that are not.');
    return;
  }

  const input = $('bundle-file');
  input.addEventListener('change', () => takeFile(input.files[0]));

  const drop = $('drop');
  let depth = 0;
  drop.addEventListener('dragenter', (e) => {
    e.preventDefault();
    depth++;
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => {
    if (--depth <= 0) {
      depth = 0;
      drop.classList.remove('over');
    }
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) takeFile(file);
  });
  // A file dropped beside the zone must not make the browser open it.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  document.addEventListener('paste', (e) => {
    const target = e.target;
    if (target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement) return;
    const file = e.clipboardData.files[0];
    if (file) {
      e.preventDefault();
      takeFile(file);
      return;
    }
    const pasted = e.clipboardData.getData('text');
    if (pasted.trim() !== '') {
      e.preventDefault();
      takeText(pasted, 'pasted text');
    }
  });

  $('min-signatures').addEventListener('input', () => verify());
  $('origin').addEventListener('change', () => verify());

  const keysFile = $('keys-file');
  keysFile.addEventListener('change', async () => {
    const f = keysFile.files[0];
    if (f) keysFromText(new Uint8Array(await f.slice(0, 1 << 20).arrayBuffer()), 'file');
  });
  $('keys-use').addEventListener('click', () => keysFromText($('keys-text').value, 'pasted'));
  $('keys-reset').addEventListener('click', () => {
    if (state.serverKeys) useKeys(state.serverKeys, '', 'server');
    else if (!OFFLINE) loadServerKeys();
  });

  const policyFile = $('policy-file');
  policyFile.addEventListener('change', async () => {
    const f = policyFile.files[0];
    if (f) policyFromText(new Uint8Array(await f.slice(0, (64 << 10) + 1).arrayBuffer()), 'file');
  });
  $('policy-use').addEventListener('click', () => policyFromText($('policy-text').value, 'pasted'));
  $('policy-clear').addEventListener('click', () => clearPolicy());
  // #policy=<the policy file's text, percent-encoded>: the fragment is
  // never sent to the server.
  if (location.hash.startsWith('#policy=')) {
    let policyText = null;
    try {
      policyText = decodeURIComponent(location.hash.slice('#policy='.length));
    } catch {
      state.policyError = 'The policy in the address of this page is not percent-encoded text.';
      showTrust();
    }
    if (policyText !== null) {
      $('policy').open = true;
      policyFromText(policyText, 'link');
    }
  }

  if (OFFLINE) {
    // A saved copy opened from disk: there is no server to ask, and none
    // is asked. Trust comes from the policy (or keys) the user chooses.
    $('save-offline').hidden = true;
    useKeys(null, 'This is a saved copy of the verifier, working offline: choose the notary\'s published policy file under "Trust policy" (or a keys file under "Use other keys").', 'offline');
    return;
  }
  loadServerKeys();
}

setup();
