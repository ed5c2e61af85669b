// Y.js documents around an export and import with the `dexie-cloud` CLI (test_yjs_cli_e2e.py).
// Each step runs this scenario once, with one device.
//
// mode "write": a device writes the text of a note's document and of the document of a
// private-id object (`#prefs`, which the client names so in Y messages and as `#prefs:<user>`
// in its data changes) and waits until the server acknowledged every update.
// mode "read": a new device of the user downloads the documents and reads both texts.
//
// args: {databaseUrl, user, mode, id?}
// result: write: {id, note, prefs}; read: {note, prefs, downloads}
import { closeDevice, push, scenario, waitFor } from '../client.mjs'; // first: fake-indexeddb
import { downloads, yDevice } from '../ydocs.mjs';
import { DexieYProvider } from 'y-dexie';

const SCHEMA = { notes: '@id, title, content:Y.Doc', prefs: 'id, content:Y.Doc' };
const PRIVATE_ID = '#prefs';

async function withText(db, table, id, edit) {
  const doc = (await db.table(table).get(id)).content;
  const provider = DexieYProvider.load(doc);
  await provider.whenLoaded;
  try {
    const text = doc.getText('t');
    if (edit) edit(text);
    return text.toString();
  } finally {
    DexieYProvider.release(doc);
  }
}

/** Whether the server acknowledged every local update of `table.content`. */
async function allAcknowledged(db, table) {
  const rows = await db.table(`$${table}.content_updates`).toArray();
  const syncer = rows.find((row) => row.i === 'dexie-cloud-syncer');
  const local = rows.filter((row) => typeof row.i === 'number' && (row.f ?? 0) & 1);
  return local.length > 0 && syncer && local.every((row) => row.i < syncer.unsentFrom);
}

scenario(async ({ databaseUrl, user, mode, id }) => {
  const db = await yDevice(databaseUrl, user, SCHEMA);
  if (mode === 'write') {
    const noteId = await db.notes.add({ title: 'exported note' });
    await db.prefs.put({ id: PRIVATE_ID, theme: 'dark' });
    const note = await withText(db, 'notes', noteId, (t) => t.insert(0, 'Hello from the source'));
    const prefs = await withText(db, 'prefs', PRIVATE_ID, (t) => t.insert(0, 'my private text'));
    await waitFor(
      async () => {
        await push(db);
        return (await allAcknowledged(db, 'notes')) && (await allAcknowledged(db, 'prefs'));
      },
      { timeoutMs: 20000, what: 'the server to acknowledge the updates' },
    );
    closeDevice(db);
    return { id: noteId, note, prefs };
  }
  await waitFor(() => db.cloud.persistedSyncState.value?.yDownloadedRealms?.[user] === '*', {
    timeoutMs: 15000,
    what: 'the download of the documents',
  });
  const result = {
    note: await withText(db, 'notes', id),
    prefs: await withText(db, 'prefs', PRIVATE_ID),
    downloads: downloads.length,
  };
  closeDevice(db);
  return result;
});
