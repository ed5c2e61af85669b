// Y.js documents with y-dexie: two devices of one user edit the `content` document of one note,
// first online (both open, their sockets on different server workers), then both offline and
// back (the app restarts). Their texts must converge and keep every edit. Awareness set on one
// device must reach the other live. A user without access to the note's realm gets nothing of it,
// and a device that joins later gets the document through /y/download.
//
// args: {databaseUrl, user, outsider, serverLog}
// result: {workers: {a, b}, online: {a, b}, final: {a, b}, awareness (b's view of a's state),
//          outsider: {notes, updates}, late: {text, downloads}}
import {
  closeDevice, onDifferentWorkers, pull, scenario, setOffline, waitFor,
} from '../client.mjs'; // first: it installs fake-indexeddb, which Dexie looks for when loaded
import { UPDATES, downloads, open, textOf, yDevice, yRestart } from '../ydocs.mjs';

const hasAll = (text, parts) => parts.every((part) => text.includes(part));

scenario(async ({ databaseUrl, user, outsider, serverLog }) => {
  const device = (userId) => yDevice(databaseUrl, userId);
  const restart = yRestart;
  let a = await device(user);
  let b = await device(user);
  const { workers } = await onDifferentWorkers({ a, b }, user, serverLog);
  const c = await device(outsider);

  const id = await a.notes.add({ title: 'shared note' });
  await waitFor(async () => await b.notes.get(id), { timeoutMs: 15000, what: 'the note on b' });

  // Online: both documents open (their awareness sends doc-open), concurrent edits.
  const docA = await open(a, id);
  const docB = await open(b, id);
  const awarenessA = docA.provider.awareness;
  const awarenessB = docB.provider.awareness;
  docA.text.insert(0, 'A-online ');
  docB.text.insert(0, 'B-online ');
  const online = ['A-online', 'B-online'];
  await waitFor(
    () => docA.text.toString() === docB.text.toString() && hasAll(docA.text.toString(), online),
    { timeoutMs: 20000, what: 'the online edits on both devices' },
  );
  const onlineTexts = { a: docA.text.toString(), b: docB.text.toString() };

  // Awareness travels only over the sockets (never stored, never in /sync).
  let lastSet = 0;
  const seen = await waitFor(
    () => {
      if (Date.now() - lastSet > 1000) {
        lastSet = Date.now();
        awarenessA.setLocalStateField('user', { name: 'alice-a', at: lastSet });
      }
      return [...awarenessB.getStates().values()].find((state) => state.user?.name === 'alice-a');
    },
    { timeoutMs: 20000, what: "a's awareness on b" },
  );

  // Offline: both edit, then the app restarts online and syncs.
  setOffline(databaseUrl);
  docA.text.insert(docA.text.length, ' A-offline');
  docB.text.insert(0, 'B-offline ');
  await new Promise((resolve) => setTimeout(resolve, 500)); // y-dexie stores the updates
  docA.release();
  docB.release();
  setOffline(databaseUrl, false);
  a = await restart(a);
  b = await restart(b);
  const all = [...online, 'A-offline', 'B-offline'];
  let final;
  await waitFor(
    async () => {
      await pull(a);
      await pull(b);
      final = { a: await textOf(a, id), b: await textOf(b, id) };
      return final.a === final.b && hasAll(final.a, all);
    },
    { timeoutMs: 30000, what: `both devices to hold every edit (last: ${JSON.stringify(final)})` },
  );

  // The outsider syncs too, and holds neither the note nor its document.
  await pull(c);
  const outsiderUpdates = (await c.table(UPDATES).toArray()).filter((row) => row.k === id);
  const outsiderState = { notes: await c.notes.count(), updates: outsiderUpdates.length };

  // A device that joins now downloads the document (its first sync sends no updates).
  const downloadsBefore = downloads.length;
  const late = await device(user);
  await waitFor(() => late.cloud.persistedSyncState.value?.yDownloadedRealms?.[user] === '*', {
    timeoutMs: 15000,
    what: "the late device's download",
  });
  const lateText = await textOf(late, id);
  closeDevice(late);

  return {
    workers,
    online: onlineTexts,
    final,
    awareness: seen.user.name,
    outsider: outsiderState,
    late: { text: lateText, downloads: downloads.length - downloadsBefore },
  };
});
