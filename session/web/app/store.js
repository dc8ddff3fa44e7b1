// Keeping the patient's bundles in this browser: every bundle the page
// receives as the patient is written to IndexedDB, so that a reload, or a
// visit long after the consultation (its link expired), still shows them.
// Nothing here is sent anywhere; clearing the site's data deletes them.
//
// A record is {commitment, kind, index, timestamp, room, ref, text,
// savedAt}: text is the bundle exactly as the server sent it (the bytes the
// verifier judges), the rest is for listing it.

const DB_NAME = 'telenotary';
const STORE = 'bundles';

let db = null; // a promise of the open database

function open() {
  db ??= new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new Error('this browser has no IndexedDB'));
      return;
    }
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'commitment' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error || new Error('the browser storage cannot be opened'));
    req.onblocked = () => reject(new Error('the browser storage is blocked by another tab'));
  });
  db.catch(() => {
    db = null; // try again next time
  });
  return db;
}

function request(mode, fn) {
  return open().then((d) => new Promise((resolve, reject) => {
    const tx = d.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error || new Error('the browser storage failed'));
    tx.onabort = () => reject(tx.error || new Error('the browser storage refused the bundle (is it full?)'));
  }));
}

/** save keeps a bundle record; it resolves once the record is on disk. */
export function save(record) {
  return request('readwrite', (s) => s.put({ ...record, savedAt: record.savedAt ?? Date.now() }));
}

/** all returns every kept record, oldest first. */
export async function all() {
  const list = await request('readonly', (s) => s.getAll());
  return list.sort((a, b) => (a.savedAt - b.savedAt) || ((a.index ?? 0) - (b.index ?? 0)));
}

/** get returns the record of a commitment, or undefined. */
export function get(commitment) {
  return request('readonly', (s) => s.get(commitment));
}
