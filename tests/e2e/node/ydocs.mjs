// Y.js documents with y-dexie in one Node process: devices opened with `yDevice`, and their
// documents. y-dexie announces every new document provider to every database of the JS
// process, and each database's cloud addon takes it as its own (the last one wins, sending the
// document's doc-open and awareness over ITS socket). A browser page has one such database;
// this process has several, so each device's handler is made to take only the documents of
// its own database.
import { openDevice, reopen } from './client.mjs';
import yDexie, { DexieYProvider } from 'y-dexie';

let opening = null; // the name of the device being opened (its addon subscribes meanwhile)
const ownOnly = new Map();
const announced = DexieYProvider.on.new;
const subscribe = announced.subscribe.bind(announced);
const unsubscribe = announced.unsubscribe.bind(announced);
announced.subscribe = (handler) => {
  const name = opening;
  // The addon opens the device's database as "<name>-<dbId>".
  const own = (provider) => {
    const dbName = provider.doc?.meta?.db?.name ?? '';
    return dbName === name || dbName.startsWith(`${name}-`) ? handler(provider) : undefined;
  };
  ownOnly.set(handler, own);
  return subscribe(own);
};
announced.unsubscribe = (handler) => unsubscribe(ownOnly.get(handler) ?? handler);

export const SCHEMA = { notes: '@id, title, content:Y.Doc' };
export const UPDATES = '$notes.content_updates'; // y-dexie's table of the documents' updates

export const downloads = [];
const fetchBefore = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = String(input?.url ?? input);
  if (url.endsWith('/y/download')) downloads.push(url);
  return fetchBefore(input, init);
};

/** The note's document, loaded; `release()` when done. */
export async function open(db, id) {
  const note = await db.notes.get(id);
  const doc = note.content;
  const provider = DexieYProvider.load(doc);
  await provider.whenLoaded;
  return { doc, provider, text: doc.getText('t'), release: () => DexieYProvider.release(doc) };
}

export async function textOf(db, id) {
  const document = await open(db, id);
  try {
    return document.text.toString();
  } finally {
    document.release();
  }
}

let devices = 0;

/** A device of `userId` with the notes schema (or `schema`) and y-dexie. */
export function yDevice(databaseUrl, userId, schema = SCHEMA) {
  opening = `yjs-${process.pid}-${++devices}`;
  return openDevice({ databaseUrl, userId, name: opening, schema, addons: [yDexie] });
}

/** `db` closed and opened again (the app restarts). */
export function yRestart(db) {
  opening = db.name;
  return reopen(db);
}
