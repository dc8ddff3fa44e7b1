// The page for the pharmacy: one prescription the patient's browser kept
// (store.js), named by its commitment in the fragment (#c=HEX), with what
// a pharmacist reads (medication, dosage, status, the notary's entry and
// time) and how to check the bundle. It reads this browser's storage only.

import * as store from './store.js';
import * as receipts from './receipts.js';

const $ = (id) => document.getElementById(id);

// The page's state, for tests: {commitment, found, valid, reason}.
const state = { commitment: '', found: null, valid: null, reason: '' };
window.telenotaryPrint = state;

function pad(n) {
  return String(n).padStart(2, '0');
}

function utc(d) {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

function missing(text) {
  state.found = false;
  $('missing').textContent = text;
  $('missing').hidden = false;
}

async function main() {
  $('print').addEventListener('click', () => window.print());
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  state.commitment = params.get('c') || '';
  if (!state.commitment) {
    missing('No prescription named: open this page from the receipts of the consultation page.');
    return;
  }
  let record;
  try {
    record = await store.get(state.commitment);
  } catch (err) {
    missing(`This browser's storage cannot be read: ${err && err.message ? err.message : err}.`);
    return;
  }
  let bundle = null;
  try {
    bundle = record ? JSON.parse(record.text) : null;
  } catch {
    bundle = null;
  }
  if (!bundle || record.kind !== 'prescription') {
    missing('This browser keeps no such prescription (it may have been deleted with the site\'s data).');
    return;
  }
  state.found = true;
  const doc = bundle.document;
  const d = receipts.describe(bundle);
  const file = receipts.fileName(d.kind || record.kind, d.index);
  const display = (ref) => (ref && typeof ref === 'object' ? String(ref.display || ref.reference || '') : '');
  $('rx-medication').textContent = receipts.medicationOf(doc) || '—';
  $('rx-dosage').textContent = receipts.dosageOf(doc) || '—';
  $('rx-status').textContent = receipts.statusOf(doc) || '—';
  $('rx-patient').textContent = display(doc && doc.subject) || '—';
  $('rx-requester').textContent = display(doc && doc.requester) || '—';
  $('rx-authored').textContent = doc && typeof doc.authoredOn === 'string' ? doc.authoredOn : '—';
  $('rx-entry').textContent = d.index === null ? '—' : `#${d.index}`;
  $('rx-time').textContent = d.timestamp === null ? '—' : utc(new Date(d.timestamp));
  $('rx-commitment').textContent = d.commitment || '—';
  $('rx-file').textContent = file;
  $('rx-verify-cmd').textContent = `telenotary verify ${file} --keys keys.pub`;
  $('rx-keys-url').textContent = new URL('/v1/keys', location.href).href;
  $('rx-verify-url').textContent = new URL('/verify/', location.href).href;
  $('rx').hidden = false;
  document.title = `${receipts.medicationOf(doc) || 'Prescription'} · entry #${d.index} · telenotary`;

  const res = await receipts.verify(record.text);
  state.valid = res.valid;
  state.reason = res.reason;
  const check = $('rx-check');
  check.textContent = res.valid
    ? `✓ verified in this browser${res.signers && res.signers.length ? `, signed by ${res.signers.join(', ')}` : ''}`
    : `✗ does not verify: ${res.reason}`;
  check.dataset.state = res.valid ? 'ok' : 'bad';
}

main();
