// The consultation page: joins a room with its token, runs the signalling
// protocol (signal.js) and the peer connection (call.js), and shows the
// video, the chat, the prescriptions and the notary's receipts, each checked
// in the page with the offline verifier (receipts.js).
//
// The page's state is kept in window.telenotaryApp, a plain object that
// tests (and a developer's console) can read.
//
// The URL fragment carries the token and options, so none of them reach the
// server's logs: #token=JWT, and optionally min_signatures=N (how many notary
// keys must sign a receipt, default 1), origin=LOG (the only notary log
// accepted) and loopback=1 (use only loopback network addresses: tests and
// demos on one machine).

import { decodeToken, tokenFromFragment } from './token.js';
import { Signal, keptTicket, signalURL } from './signal.js';
import { Call, describePair } from './call.js';
import * as receipts from './receipts.js';
import { examplePrescription } from './example.js';
import { checkPrescriptionText, sizeFault } from './rxcheck.js';
import * as store from './store.js';
import { zip } from './zip.js';

// STUN and TURN servers for the peer connection. A deployment whose users
// are behind NATs sets its own here; none are needed on one network.
const ICE_SERVERS = [];

const KIND_LABELS = {
  'session-start': 'Consultation started',
  'session-end': 'Consultation ended',
  prescription: 'Prescription',
  consent: 'Consent',
  document: 'Document',
};

// Errors the server sends for a prescription it refused; it does not echo
// the ref with them, so they are put on the latest prescription sent.
const PRESCRIPTION_CODES = new Set(['invalid_resource', 'not_started', 'forbidden', 'limit', 'bad_message']);

const state = {
  role: '',
  room: '',
  session: '',
  media: false, // whether the page sends camera and microphone
  signal: 'idle', // idle, connecting, joined, reconnecting, closed
  peerPresent: false,
  rejoins: 0, // times this page joined again after its connection dropped
  peerReturns: 0, // times the other participant came back
  peerAwayUntil: 0, // ms: when the other participant's grace window ends
  connected: false, // the data channel is open
  ice: 'new',
  dtls: 'new',
  connectionState: 'new',
  selectedPair: null,
  localFingerprint: '',
  remoteSdpFingerprint: '',
  peerFingerprint: '',
  reportedFingerprint: '', // the last fingerprint sent to the server
  negotiations: 0,
  restarts: 0,
  receipts: [], // {kind, ref, index, timestamp, valid, reason, signers, medication, status, dosage, commitment, room, saved, kept}
  keptLoaded: false, // the bundles kept in this browser are listed
  sent: [], // the physician's prescriptions: {ref, status, index}
  notSent: [], // prescriptions the page did not send: {path, reason}
  chat: [], // {from: "you"|"peer", text, time}
  errors: [], // {code, message, ref}
  ended: null, // {reason, index, valid}
};
window.telenotaryApp = state;

const $ = (id) => document.getElementById(id);

let signal = null;
let call = null;
let localStream = null;
let pendingFingerprint = '';
let policy = { minSignatures: 1, origin: '' };
let loopback = false;
let tokenRoom = ''; // the room of the token in the form, before joining
const sentResources = new Map(); // ref → the resource as sent
// The same document again within this time of sending it is not sent
// until the physician clicks a second time: a double click or a reflex
// does not notarize two copies.
const RESEND_WINDOW_MS = 60_000;
let lastSent = null; // {doc, ref, at}: the last prescription sent
let resendArmed = ''; // the ref whose copy the next click sends
let pendingRef = ''; // the prescription the send button waits for
let pendingTimer = 0;
const bundleURLs = [];
const bundleTexts = new Map(); // commitment → the bundle's text as sent
let askedPersist = false;

// --- joining ----------------------------------------------------------

function init() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const min = Number.parseInt(params.get('min_signatures') ?? '', 10);
  policy = { minSignatures: Number.isSafeInteger(min) && min > 0 ? min : 1, origin: params.get('origin') ?? '' };
  loopback = params.get('loopback') === '1';
  const token = tokenFromFragment(location.hash);
  if (token) $('token').value = token;
  $('token').addEventListener('input', showTokenInfo);
  showTokenInfo();
  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const media = ev.submitter ? ev.submitter.dataset.media === 'on' : true;
    join(media);
  });
  $('prescription').value = JSON.stringify(examplePrescription(), null, 2);
  $('prescription-example').addEventListener('click', () => {
    $('prescription').value = JSON.stringify(examplePrescription(), null, 2);
  });
  $('prescription-file').addEventListener('change', loadPrescriptionFile);
  $('prescribe-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    prescribe();
  });
  $('chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendChat();
  });
  $('leave').addEventListener('click', leave);
  $('toggle-mic').addEventListener('click', () => toggleTrack('audio', $('toggle-mic'), 'Unmute microphone', 'Mute microphone'));
  $('toggle-cam').addEventListener('click', () => toggleTrack('video', $('toggle-cam'), 'Turn camera on', 'Turn camera off'));
  window.addEventListener('error', (ev) => addError('page', ev.message || 'an error in the page'));
  window.addEventListener('unhandledrejection', (ev) => addError('page', String(ev.reason && ev.reason.message ? ev.reason.message : ev.reason)));
  // A bundle the patient received but this browser has not yet written
  // down would be lost with the tab: ask first.
  window.addEventListener('beforeunload', (ev) => {
    if (state.receipts.some((e) => e.saved === false && !e.saveError)) ev.preventDefault();
  });
  window.addEventListener('pagehide', () => {
    for (const u of bundleURLs) URL.revokeObjectURL(u);
  });
  $('download-all').addEventListener('click', downloadAll);
  let role = '';
  try {
    const c = token ? decodeToken(token) : null;
    role = c ? c.role : '';
    tokenRoom = c ? c.room : '';
  } catch {
    role = ''; // a bad token: the bundles are still the browser's
  }
  loadKept(role);
}

function showTokenInfo() {
  const info = $('token-info');
  const token = $('token').value.trim();
  $('token').removeAttribute('aria-invalid');
  if (!token) {
    info.textContent = '';
    return;
  }
  try {
    const c = decodeToken(token);
    const exp = c.exp ? `, valid until ${utcAndLocal(c.exp, true)}` : '';
    // A token joins once: a page that joined with it before (and was
    // reloaded) comes back with the resume ticket the server gave it.
    const verb = keptTicket(token) ? 'rejoin' : 'join';
    info.textContent = `You will ${verb} room ${c.room} as the ${c.role}${exp}.` + (c.expired ? ' This token has expired.' : '');
    info.dataset.state = c.expired ? 'bad' : 'ok';
  } catch (err) {
    info.textContent = `${err.message}.`;
    info.dataset.state = 'bad';
    $('token').setAttribute('aria-invalid', 'true');
  }
}

async function join(withMedia) {
  const token = $('token').value.trim();
  let claims;
  try {
    claims = decodeToken(token);
  } catch (err) {
    addError('token', `${err.message}.`);
    $('token').focus();
    return;
  }
  for (const b of document.querySelectorAll('#join-form button')) b.disabled = true;
  let stream = null;
  if (withMedia) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch (err) {
      addError('media', `The camera and microphone cannot be used (${err.name}: ${err.message}). Allow them, or join without camera.`);
      for (const b of document.querySelectorAll('#join-form button')) b.disabled = false;
      return;
    }
  }
  start(token, claims, stream);
}

function start(token, claims, stream) {
  state.role = claims.role;
  state.room = claims.room;
  state.media = stream !== null;
  $('join').hidden = true;
  $('consultation').hidden = false;
  $('prescribe').hidden = claims.role !== 'physician';
  showReceipts();
  $('st-role').textContent = claims.role === 'physician' ? 'the physician' : 'the patient';
  $('st-room').textContent = claims.room;
  if (stream) {
    $('local-video').srcObject = stream;
  } else {
    $('local-video').closest('figure').classList.add('off');
    $('toggle-mic').disabled = true;
    $('toggle-cam').disabled = true;
  }
  document.body.dataset.role = claims.role;

  localStream = stream;
  signal = new Signal(signalURL(), token, claims.room);
  call = new Call({ role: claims.role, send: (m) => signal.send(m), stream, iceServers: ICE_SERVERS, loopback });

  call.addEventListener('state', (ev) => {
    const s = ev.detail;
    if (state.ended) {
      // The call closed with the consultation: the details stay as they
      // were at the end, for the user to read, instead of going blank.
      Object.assign(state, { connected: false, connectionState: 'closed' });
      renderStatus();
      return;
    }
    reportPath(s.selectedPair);
    Object.assign(state, {
      connected: s.connected, ice: s.iceState, dtls: s.dtlsState, connectionState: s.connectionState,
      selectedPair: s.selectedPair, localFingerprint: s.localFingerprint,
      remoteSdpFingerprint: s.remoteSdpFingerprint, peerFingerprint: s.peerFingerprint,
      negotiations: s.negotiations, restarts: s.restarts,
    });
    renderStatus();
  });
  call.addEventListener('fingerprint', (ev) => {
    pendingFingerprint = ev.detail;
    reportFingerprint();
  });
  call.addEventListener('track', (ev) => {
    const v = $('remote-video');
    if (v.srcObject !== ev.detail) v.srcObject = ev.detail;
    v.play().catch(() => {}); // autoplay may wait for a click; the controls stay usable
    renderStatus();
  });
  call.addEventListener('chat', (ev) => addChat(ev.detail));
  call.addEventListener('log', (ev) => logEvent(ev.detail));
  call.addEventListener('failure', (ev) => addError(ev.detail.code, ev.detail.message));

  signal.addEventListener('state', (ev) => {
    state.signal = ev.detail;
    logEvent(`server: ${ev.detail}`);
    renderStatus();
  });
  signal.addEventListener('message', (ev) => onMessage(ev.detail));
  signal.addEventListener('closed', (ev) => {
    if (state.ended) return;
    const e = ev.detail.error;
    const why = e ? `${e.code}: ${e.message}` : `the connection closed (${ev.detail.code} ${ev.detail.reason})`.trim();
    addError('disconnected', `You are no longer in the consultation: ${why}`);
    call.close();
    disableControls();
  });
  signal.start();
  renderStatus();
}

// --- the protocol -------------------------------------------------------

function onMessage(msg) {
  switch (msg.type) {
    case 'joined':
      state.session = msg.session || '';
      $('st-session').textContent = state.session || '—';
      if (msg.resumed) state.rejoins++;
      logEvent(msg.resumed ? 'joined again: the consultation goes on' : 'joined the room');
      setPeer(msg.peer_present === true);
      call.joined(msg);
      reportFingerprint();
      break;
    case 'peer-joined':
      if (msg.resumed) state.peerReturns++;
      setPeer(true);
      call.peerJoined(msg);
      break;
    case 'peer-left':
      state.peerAwayUntil = Date.now() + (msg.grace_ms || 0);
      logEvent(`the ${msg.role || 'other participant'} lost the connection; ${Math.round((msg.grace_ms || 0) / 1000)} s to come back`);
      setPeer(false);
      call.peerLeft(msg);
      break;
    case 'offer':
    case 'answer':
    case 'candidate':
      call.signal(msg);
      break;
    case 'receipt':
      addBundle(msg, msg.kind);
      break;
    case 'prescription':
      addBundle(msg, msg.kind || 'prescription');
      break;
    case 'session-end':
      endSession(msg);
      break;
    case 'revoked':
      // The physician (or the app's backend) revoked a prescription of
      // this consultation: pharmacies are now refused its dispenses.
      logEvent(`a prescription was revoked (${String(msg.commitment || '').slice(0, 12)}…): it can no longer be dispensed`);
      break;
    case 'error':
      onError(msg);
      break;
    default:
      logEvent(`ignored a message of type ${msg.type}`);
  }
}

function onError(msg) {
  if (msg.code === 'peer_absent') {
    // An offer, answer or candidate crossed the other side's leaving: the
    // server says so before its "left" arrives. Nothing is lost that the
    // negotiation after their return does not send again.
    logEvent(`not relayed: ${msg.message || 'the other side is not connected'}`);
    return;
  }
  addError(msg.code || 'error', msg.message || '', msg.ref || '');
  if (state.role !== 'physician') return;
  let sent = msg.ref ? state.sent.find((s) => s.ref === msg.ref) : null;
  if (!sent && !msg.ref && PRESCRIPTION_CODES.has(msg.code)) {
    sent = state.sent.findLast((s) => s.status === 'sending');
  }
  if (sent && sent.status === 'sending') {
    sent.status = 'refused';
    sent.reason = `${msg.code}: ${msg.message}`;
    $('prescribe-status').textContent = `Not notarized: ${msg.message} (${msg.code}).`;
    if (lastSent && lastSent.ref === sent.ref) lastSent = null; // a refused one may be sent again at once
    settled(sent.ref);
  }
}

function reportFingerprint() {
  if (!pendingFingerprint || !signal) return;
  if (signal.send({ type: 'fingerprint', fingerprint: pendingFingerprint })) {
    state.reportedFingerprint = pendingFingerprint;
    logEvent('reported the certificate this browser received to the server');
    pendingFingerprint = '';
  }
}

// reportPath tells the server the kind of candidate this side's selected
// pair uses (host, srflx, prflx or relay) whenever it changes: the
// operator's console shows which consultations go through a relay.
let reportedPath = '';
function reportPath(pair) {
  const path = pair && pair.local ? pair.local.type : '';
  if (!path || path === reportedPath || !signal) return;
  if (signal.send({ type: 'path', path })) reportedPath = path;
}

let awayTimer = 0;

function setPeer(present) {
  state.peerPresent = present;
  clearInterval(awayTimer);
  if (present) {
    state.peerAwayUntil = 0;
  } else if (state.peerAwayUntil) {
    awayTimer = setInterval(renderStatus, 1000);
  }
  renderStatus();
}

// --- receipts -------------------------------------------------------------

// addBundle records and checks the bundle of a receipt, prescription or
// session-end message.
function addBundle(msg, messageKind) {
  const bundle = msg.bundle;
  const ref = msg.ref || '';
  if (!bundle || typeof bundle !== 'object') {
    addError('bad_bundle', `a ${messageKind} arrived without its bundle`);
    return null;
  }
  const text = (msg.raw && receipts.rawMember(msg.raw, 'bundle')) || JSON.stringify(bundle);
  const known = state.receipts.find((r) => r.commitment && r.commitment === receipts.describe(bundle).commitment);
  if (known) {
    // Sent again after a reconnection: the server did not hear that it is
    // kept (or it was kept on an earlier page, before a reload).
    if (known.saved) tellKept(known);
    return known;
  }
  const entry = track(bundle, text, messageKind, ref, state.room);
  entry.holder = msg.holder || '';
  logEvent(`received a receipt: ${entry.kind} #${entry.index}`);
  if (state.role === 'patient' && entry.commitment) keep(entry, text); // a bundle without a commitment has no key to keep it by
  return entry;
}

// track lists a bundle (received now, or kept from before) and checks it.
function track(bundle, text, messageKind, ref, room) {
  const d = receipts.describe(bundle);
  const entry = {
    kind: d.kind || messageKind, ref, index: d.index, timestamp: d.timestamp, commitment: d.commitment,
    valid: null, reason: '', signers: [], medication: '', status: '', dosage: '', room, saved: null,
  };
  if (entry.kind === 'prescription') {
    entry.medication = receipts.medicationOf(bundle.document);
    entry.status = receipts.statusOf(bundle.document);
    entry.dosage = receipts.dosageOf(bundle.document);
  }
  state.receipts.push(entry);
  bundleTexts.set(entry.commitment, text);
  const url = receipts.downloadURL(text);
  bundleURLs.push(url);
  entry.download = receipts.fileName(entry.kind, entry.index);
  renderReceipt(entry, url);
  showReceipts();

  const sent = ref && state.role === 'physician' ? state.sent.find((s) => s.ref === ref) : null;
  receipts.verify(text, policy).then((res) => {
    entry.valid = res.valid;
    entry.reason = res.reason;
    entry.signers = res.signers || [];
    if (res.valid && messageKind && res.kind !== messageKind) {
      entry.valid = false;
      entry.reason = `the server called this a ${messageKind}, but the receipt is for a ${res.kind}`;
    }
    if (res.valid && sent && !receipts.sameJSON(sentResources.get(ref), bundle.document)) {
      entry.valid = false;
      entry.reason = 'the notarized prescription is not the one you sent';
    }
    if (sent) {
      settled(sent.ref);
      sent.status = entry.valid ? 'notarized' : 'invalid receipt';
      sent.index = entry.index;
      $('prescribe-status').textContent = entry.valid
        ? `Prescription notarized as entry #${entry.index}; ${HOLDER_TEXT[entry.holder] ?? 'sent to the patient.'}`
        : `The receipt for this prescription does not verify: ${entry.reason}.`;
    }
    renderReceipt(entry, url);
    if (state.ended && state.ended.commitment === entry.commitment) showEnded();
  });
  return entry;
}

// --- what the patient keeps ----------------------------------------------

// keep writes a bundle the patient received to this browser's storage
// (store.js); until it is written, closing the tab asks first.
function keep(entry, text) {
  entry.saved = false;
  // Ask the browser not to evict this site's storage when space runs low.
  if (!askedPersist && navigator.storage && navigator.storage.persist) {
    askedPersist = true;
    navigator.storage.persist().catch(() => {});
  }
  store.save({
    commitment: entry.commitment, kind: entry.kind, index: entry.index, timestamp: entry.timestamp,
    room: entry.room, ref: entry.ref, text,
  }).then(() => {
    entry.saved = true;
    tellKept(entry);
  }, (err) => {
    entry.saveError = err && err.message ? err.message : String(err);
    addError('storage', `This browser could not keep the ${KIND_LABELS[entry.kind] ?? entry.kind} bundle (${entry.saveError}): download it now.`);
  }).finally(() => renderReceipt(entry, urlOf(entry)));
}

// HOLDER_TEXT says who holds a prescription's bundle, as the physician's
// receipt names it (the server sends the receipt only once one does).
const HOLDER_TEXT = {
  patient: "the patient's app keeps it.",
  webhook: "the app's backend has it.",
  server: "the patient's app never confirmed it: the server holds it for the app's backend to fetch.",
};

// tellKept tells the server this browser keeps a prescription's bundle:
// the physician's receipt waits for it (or for the app's webhook). If the
// connection is down, the server sends the bundle again on the way back,
// and this page answers then.
function tellKept(entry) {
  if (entry.kind !== 'prescription' || state.role !== 'patient' || !signal) return;
  signal.send({ type: 'kept', commitment: entry.commitment });
}

function urlOf(entry) {
  return document.querySelector(`#receipt-rows tr[data-commitment="${entry.commitment}"] a[download]`)?.href ?? '';
}

// loadKept lists the bundles this browser kept from earlier pages: on a
// reload, or on a later visit whose link expired or whose consultation
// ended. A physician's page does not show them (they are the patient's).
async function loadKept(role) {
  if (role === 'physician') return;
  let records;
  try {
    records = await store.all();
  } catch (err) {
    addError('storage', `The bundles kept in this browser cannot be read: ${err && err.message ? err.message : err}.`);
    return;
  }
  for (const r of records) {
    if (state.receipts.some((e) => e.commitment === r.commitment)) continue; // arrived again meanwhile
    let bundle;
    try {
      bundle = JSON.parse(r.text);
    } catch {
      continue;
    }
    const entry = track(bundle, r.text, r.kind, r.ref || '', r.room || '');
    entry.saved = true;
    entry.kept = true;
    renderReceipt(entry, urlOf(entry));
  }
  state.keptLoaded = true;
}

function showReceipts() {
  $('receipts').hidden = false;
  $('download-all').disabled = state.receipts.length === 0;
}

// downloadAll saves every bundle listed as one zip file, one .json file
// per bundle inside, named as its own download is.
function downloadAll() {
  const names = new Set();
  const files = [];
  for (const e of state.receipts) {
    const text = bundleTexts.get(e.commitment);
    if (!text) continue;
    let name = e.download;
    for (let i = 2; names.has(name); i++) name = e.download.replace(/\.json$/, `-${i}.json`);
    names.add(name);
    files.push({ name, text });
  }
  const a = $('download-all-file');
  if (a.href) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(zip(files));
  const now = new Date();
  a.download = `telenotary-bundles-${now.getUTCFullYear()}-${pad(now.getUTCMonth() + 1)}-${pad(now.getUTCDate())}.zip`;
  a.dataset.count = String(files.length);
  a.click();
  $('download-all-status').textContent = `Saved ${files.length} bundle${files.length === 1 ? '' : 's'} in ${a.download}.`;
}

function renderReceipt(entry, url) {
  const tbody = $('receipt-rows');
  tbody.querySelector('.empty')?.remove();
  let row = tbody.querySelector(`tr[data-commitment="${entry.commitment}"]`);
  if (!row) {
    row = document.createElement('tr');
    row.dataset.commitment = entry.commitment;
    tbody.append(row);
  }
  row.replaceChildren();
  const what = cell(row, KIND_LABELS[entry.kind] ?? entry.kind);
  what.scope = 'row';
  if (entry.medication) {
    what.append(document.createElement('br'), small(entry.medication));
  }
  if (entry.status) what.append(document.createElement('br'), small(`Status: ${entry.status}`));
  if (entry.dosage) what.append(document.createElement('br'), small(`Dosage: ${entry.dosage}`));
  const here = state.room || tokenRoom;
  if (entry.room && entry.room !== here) what.append(document.createElement('br'), small(`Consultation ${entry.room}`));
  cell(row, entry.index === null ? '—' : `#${entry.index}`);
  const time = cell(row, '');
  if (entry.timestamp !== null) {
    const t = document.createElement('time');
    const at = new Date(entry.timestamp);
    t.dateTime = at.toISOString();
    t.textContent = utcTime(at, true);
    time.append(t, document.createElement('br'), small(localTime(at, true)));
  }
  const check = cell(row, '');
  check.className = 'check';
  if (entry.valid === null) {
    check.textContent = 'checking…';
    check.dataset.state = 'pending';
  } else if (entry.valid) {
    check.textContent = '✓ verified';
    check.dataset.state = 'ok';
    if (entry.signers.length) check.append(document.createElement('br'), small(`signed by ${entry.signers.join(', ')}`));
  } else {
    check.textContent = '✗ does not verify';
    check.dataset.state = 'bad';
    check.append(document.createElement('br'), small(entry.reason));
  }
  const dl = cell(row, '');
  const a = document.createElement('a');
  a.href = url;
  a.download = entry.download;
  a.textContent = 'Download';
  a.setAttribute('aria-label', `Download the ${KIND_LABELS[entry.kind] ?? entry.kind} bundle, entry ${entry.index}`);
  dl.append(a);
  if (entry.kind === 'prescription' && entry.saved) {
    const pr = document.createElement('a');
    pr.href = `print.html#c=${encodeURIComponent(entry.commitment)}`;
    pr.target = '_blank';
    pr.rel = 'noopener';
    pr.className = 'print-link';
    pr.textContent = 'Page for the pharmacy';
    dl.append(document.createElement('br'), pr);
  }
  if (entry.saved !== null) {
    const kept = small(entry.saved ? 'kept in this browser' : entry.saveError ? 'not kept: download it' : 'saving…');
    kept.className = 'kept';
    kept.dataset.state = entry.saved ? 'ok' : entry.saveError ? 'bad' : 'pending';
    dl.append(document.createElement('br'), kept);
  }
}

function cell(row, text) {
  const td = document.createElement(row.children.length === 0 ? 'th' : 'td');
  td.textContent = text;
  row.append(td);
  return td;
}

function small(text) {
  const s = document.createElement('small');
  s.textContent = text;
  return s;
}

// --- the physician's prescriptions ---------------------------------------

async function loadPrescriptionFile(ev) {
  const file = ev.target.files && ev.target.files[0];
  if (!file) return;
  try {
    // Fatal on bytes that are not UTF-8 (file.text() would put U+FFFD in
    // their place), and a byte order mark kept, so the check refuses it.
    const bytes = await file.arrayBuffer();
    $('prescription').value = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    $('prescribe-status').textContent = `Loaded ${file.name}.`;
  } catch (err) {
    $('prescribe-status').textContent = err instanceof TypeError
      ? `${file.name} is not UTF-8 text: a prescription is a JSON file in UTF-8.`
      : `${file.name} cannot be read: ${err.message}.`;
  }
}

function prescribe() {
  const status = $('prescribe-status');
  const area = $('prescription');
  const button = $('prescription-send');
  if (button.disabled) return; // one prescription at a time
  const checked = checkPrescriptionText(area.value);
  if (!checked.resource) {
    notSent(`${checked.path}: ${checked.reason}`, checked.path);
    return;
  }
  const resource = checked.resource;
  const ref = newRef();
  const message = { type: 'prescription', ref, resource };
  const tooLarge = sizeFault(resource, message);
  if (tooLarge) {
    notSent(tooLarge, 'MedicationRequest');
    return;
  }
  const doc = JSON.stringify(resource);
  if (lastSent && lastSent.doc === doc && Date.now() - lastSent.at < RESEND_WINDOW_MS && resendArmed !== lastSent.ref) {
    resendArmed = lastSent.ref;
    const ago = Math.max(1, Math.round((Date.now() - lastSent.at) / 1000));
    state.notSent.push({ path: '', reason: 'sent already' });
    status.textContent = `Not sent again: this is the prescription you sent ${ago} s ago (${lastSent.ref}). ` +
      'To send a second copy on purpose, click "Notarize and send" once more.';
    return;
  }
  resendArmed = '';
  area.removeAttribute('aria-invalid');
  if (!signal || !signal.send(message)) {
    status.textContent = 'Not sent: the connection to the server is down. Try again when it is back.';
    return;
  }
  lastSent = { doc, ref, at: Date.now() };
  sentResources.set(ref, resource);
  state.sent.push({ ref, status: 'sending', index: null });
  // The button waits for this prescription's receipt or refusal, or 30 s
  // at most (the receipt still counts when it comes later).
  button.disabled = true;
  pendingRef = ref;
  clearTimeout(pendingTimer);
  pendingTimer = setTimeout(() => settled(ref), 30_000);
  status.textContent = 'Sent to the notary; the receipt comes once the patient\'s app (or the app\'s backend) keeps the prescription…';
  logEvent(`sent prescription ${ref}`);
}

// notSent shows why the page did not send a prescription.
function notSent(reason, path) {
  const area = $('prescription');
  area.setAttribute('aria-invalid', 'true');
  state.notSent.push({ path, reason });
  $('prescribe-status').textContent = `Not sent: ${reason.replace(/[.]$/, '')}.`;
}

// settled frees the send button once the prescription it waits for has
// its receipt or refusal.
function settled(ref) {
  if (ref !== pendingRef) return;
  pendingRef = '';
  clearTimeout(pendingTimer);
  if (!state.ended) $('prescription-send').disabled = false; // after the end, the controls stay off
}

function newRef() {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return 'rx-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// --- chat, media, leaving --------------------------------------------------

function sendChat() {
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  if (!call || !call.sendChat(text)) {
    addError('chat', 'The message was not sent: the chat is not connected.');
    return;
  }
  addChat({ from: 'you', text, time: new Date() });
  input.value = '';
}

function addChat({ from, text, time }) {
  state.chat.push({ from, text, time: time.getTime() });
  const li = document.createElement('li');
  li.className = from;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = from === 'you' ? 'You' : state.role === 'physician' ? 'Patient' : 'Physician';
  const t = document.createElement('time');
  t.dateTime = time.toISOString();
  t.textContent = utcAndLocal(time, false);
  const p = document.createElement('p');
  p.textContent = text;
  li.append(who, ' ', t, p);
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

function toggleTrack(kind, button, offLabel, onLabel) {
  if (!localStream) return;
  const tracks = localStream.getTracks().filter((t) => t.kind === kind);
  const off = tracks.some((t) => t.enabled);
  for (const t of tracks) t.enabled = !off;
  button.setAttribute('aria-pressed', String(off));
  button.textContent = off ? offLabel : onLabel;
}

function leave() {
  if (!signal) return;
  if (!signal.send({ type: 'leave' })) {
    addError('leave', 'The connection to the server is down; you will leave when it is back, or when the grace period ends.');
    return;
  }
  $('leave').disabled = true;
  logEvent('leaving: waiting for the final receipt…');
}

function endSession(msg) {
  let entry = null;
  if (msg.bundle) entry = addBundle(msg, msg.kind || 'session-end');
  state.ended = {
    reason: msg.reason || '', commitment: entry ? entry.commitment : '',
    index: entry ? entry.index : null, valid: entry ? entry.valid : null,
  };
  logEvent(`the consultation ended: ${msg.reason || 'no reason given'}`);
  call.close();
  disableControls();
  showEnded();
  $('ended').focus();
}

function showEnded() {
  const ended = state.ended;
  const entry = state.receipts.find((r) => ended.commitment && r.commitment === ended.commitment);
  ended.valid = entry ? entry.valid : null;
  ended.verifyReason = entry ? entry.reason : '';
  $('ended').hidden = false;
  $('ended-reason').textContent = `Reason: ${describeReason(ended.reason)}.`;
  $('ended-receipt').textContent = !entry
    ? 'The end of the consultation was not notarized (it had not started).'
    : entry.valid === null
      ? `The end was notarized as entry #${entry.index}; checking the receipt…`
      : entry.valid
        ? `The end was notarized as entry #${entry.index}; the receipt verifies. Download it from the receipts below.`
        : `The end was notarized as entry #${entry.index}, but the receipt does not verify: ${entry.reason}.`;
}

function describeReason(reason) {
  const [what, detail] = reason.split(/: (.*)/s);
  const known = {
    'patient-left': 'the patient left',
    'physician-left': 'the physician left',
    'patient-disconnected': 'the patient lost the connection and did not come back in time',
    'physician-disconnected': 'the physician lost the connection and did not come back in time',
    expired: 'the room reached its maximum length',
    'server-shutdown': 'the server is shutting down',
  };
  const text = known[what] ?? (what || 'not given');
  return detail ? `${text} (“${detail}”)` : text;
}

function disableControls() {
  document.querySelector('.videos').hidden = true; // no more media
  for (const id of ['leave', 'chat-input', 'chat-send', 'prescription-send', 'toggle-mic', 'toggle-cam']) {
    $(id).disabled = true;
  }
  clearInterval(awayTimer);
  renderStatus();
}

// --- display ---------------------------------------------------------------

function addError(code, message, ref = '') {
  state.errors.push({ code, message, ref });
  const li = document.createElement('li');
  const c = document.createElement('code');
  c.textContent = code;
  li.append(c, ` ${message}`);
  $('error-list').append(li);
  $('errors').hidden = false;
}

const SIGNAL_TEXT = {
  idle: 'not connected', connecting: 'connecting…', joined: 'connected', reconnecting: 'reconnecting…', closed: 'closed',
};

function renderStatus() {
  const sig = $('badge-signal');
  sig.textContent = SIGNAL_TEXT[state.signal] ?? state.signal;
  // Closed after the end is how a consultation finishes, not a fault.
  sig.dataset.state = state.signal === 'joined' ? 'ok' : state.signal !== 'closed' ? 'wait' : state.ended ? 'idle' : 'bad';

  const peer = $('badge-peer');
  if (state.ended) {
    peer.textContent = '—';
    peer.dataset.state = 'idle';
  } else if (state.peerPresent) {
    peer.textContent = 'here';
    peer.dataset.state = 'ok';
  } else if (state.peerAwayUntil) {
    const left = Math.max(0, Math.round((state.peerAwayUntil - Date.now()) / 1000));
    peer.textContent = `connection lost, ${left} s to come back`;
    peer.dataset.state = 'wait';
  } else {
    peer.textContent = 'not here yet';
    peer.dataset.state = 'wait';
  }

  const callBadge = $('badge-call');
  if (state.ended) {
    callBadge.textContent = 'ended';
    callBadge.dataset.state = 'idle';
  } else if (state.connected) {
    callBadge.textContent = 'connected';
    callBadge.dataset.state = 'ok';
  } else {
    callBadge.textContent = state.connectionState === 'new' ? 'waiting' : state.connectionState;
    callBadge.dataset.state = state.connectionState === 'failed' ? 'bad' : 'wait';
  }

  $('st-ice').textContent = state.ice;
  $('st-dtls').textContent = state.dtls;
  const p = state.selectedPair;
  $('st-pair').textContent = p ? describePair(p) : '—';
  $('st-ended-note').hidden = !state.ended;
  renderCaption();
  $('st-local-fp').textContent = state.localFingerprint || '—';
  const peerFp = $('st-peer-fp');
  peerFp.textContent = state.peerFingerprint || '—';
  if (state.peerFingerprint && state.remoteSdpFingerprint) {
    const same = state.peerFingerprint === state.remoteSdpFingerprint;
    peerFp.append(document.createElement('br'), small(same ? 'matches what they announced' : 'does NOT match what they announced'));
    peerFp.dataset.state = same ? 'ok' : 'bad';
  }
  const chatOpen = state.connected && !state.ended;
  $('chat-input').disabled = !chatOpen;
  $('chat-send').disabled = !chatOpen;
}

// renderCaption says under the other side's video what the user sees
// there: whether the other participant is here, and whether they send
// video (a participant who joined chat only does not).
function renderCaption() {
  const other = state.role === 'physician' ? 'patient' : 'physician';
  const stream = $('remote-video').srcObject;
  const video = stream !== null && stream.getVideoTracks().some((t) => t.readyState === 'live');
  let text = 'Waiting for the other participant…';
  if (state.ended) {
    text = 'The consultation has ended';
  } else if (state.peerPresent && video) {
    text = `The ${other}`;
  } else if (state.peerPresent) {
    text = state.connected ? `The ${other} is here, without video: chat only` : `The ${other} is here; connecting…`;
  } else if (state.peerAwayUntil) {
    text = `The ${other} lost the connection; waiting for them to come back…`;
  }
  $('remote-caption').textContent = text;
}

// Times: the page shows UTC, as receipts and telenotary verify give them,
// with this browser's local time beside; the rule is stated on the page
// (#time-rule).

function pad(n) {
  return String(n).padStart(2, '0');
}

// utcTime formats a date in UTC: "2026-11-21 10:00:00 UTC", or the time
// of day alone without withDate.
function utcTime(d, withDate) {
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  return withDate ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time}` : time;
}

// localTime formats a date in this browser's time zone, naming the zone.
function localTime(d, withDate) {
  const opts = withDate ? { dateStyle: 'medium', timeStyle: 'long' } : { timeStyle: 'long' };
  return `${d.toLocaleString(undefined, opts)} your time`;
}

function utcAndLocal(d, withDate) {
  return `${utcTime(d, withDate)} (${localTime(d, withDate)})`;
}

function logEvent(text) {
  const li = document.createElement('li');
  const t = document.createElement('time');
  const now = new Date();
  t.dateTime = now.toISOString();
  t.textContent = utcAndLocal(now, false);
  li.append(t, ` ${text}`);
  const log = $('event-log');
  log.append(li);
  while (log.children.length > 500) log.firstElementChild.remove();
}

init();
