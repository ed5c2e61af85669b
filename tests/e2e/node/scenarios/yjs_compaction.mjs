// Y.js compaction with y-dexie: device a edits a note's document in many small steps while
// device b (the "old" device) follows; then the scenario waits while the test compacts the
// stored updates on the server (it writes `<signalDir>/edited` and waits for
// `<signalDir>/compacted`). Afterwards both edit again and must converge, and a device that
// joins now downloads the compacted document and reads the same text.
//
// args: {databaseUrl, user, signalDir, edits}
// result: {before (the text at the compaction), final: {a, b},
//          late: {text, downloaded (its rows of updates after the download), rows (at the end), downloads}}
import fs from 'node:fs';
import path from 'node:path';
import { closeDevice, pull, scenario, waitFor } from '../client.mjs'; // first: fake-indexeddb
import { UPDATES, downloads, open, textOf, yDevice } from '../ydocs.mjs';

scenario(async ({ databaseUrl, user, signalDir, edits }) => {
  const a = await yDevice(databaseUrl, user);
  const b = await yDevice(databaseUrl, user);
  const id = await a.notes.add({ title: 'long-edited note' });
  await waitFor(async () => await b.notes.get(id), { timeoutMs: 15000, what: 'the note on b' });

  const docA = await open(a, id);
  for (let n = 0; n < edits; n++) {
    docA.text.insert(n % 3 === 0 ? 0 : docA.text.length, `w${n} `);
    if (n % 7 === 6) docA.text.delete(0, 2);
    await new Promise((resolve) => setTimeout(resolve, 20)); // each its own update
  }
  const before = docA.text.toString();
  await waitFor(
    async () => {
      await pull(a);
      await pull(b);
      return (await textOf(b, id)) === before;
    },
    { timeoutMs: 30000, what: 'b to hold every edit of a' },
  );

  fs.writeFileSync(path.join(signalDir, 'edited'), before);
  await waitFor(() => fs.existsSync(path.join(signalDir, 'compacted')), {
    timeoutMs: 60000, what: 'the compaction',
  });

  docA.text.insert(0, 'A-after ');
  const docB = await open(b, id);
  docB.text.insert(docB.text.length, ' B-after');
  let final;
  await waitFor(
    async () => {
      await pull(a);
      await pull(b);
      final = { a: docA.text.toString(), b: docB.text.toString() };
      return final.a === final.b && final.a.includes('A-after') && final.a.includes('B-after');
    },
    { timeoutMs: 30000, what: `a and b to converge (last: ${JSON.stringify(final)})` },
  );
  docA.release();
  docB.release();

  const downloadsBefore = downloads.length;
  const late = await yDevice(databaseUrl, user);
  await waitFor(() => late.cloud.persistedSyncState.value?.yDownloadedRealms?.[user] === '*', {
    timeoutMs: 15000, what: "the late device's download",
  });
  const rowsOf = async () => (await late.table(UPDATES).toArray()).filter((row) => row.k === id).length;
  const downloaded = await rowsOf();
  let lateText;
  await waitFor(
    async () => {
      await pull(late);
      lateText = await textOf(late, id);
      return lateText === final.a;
    },
    { timeoutMs: 15000, what: `the late device's text (last: ${lateText})` },
  );
  const rows = await rowsOf();
  closeDevice(late);
  closeDevice(a);
  closeDevice(b);
  return {
    before, final, late: { text: lateText, downloaded, rows, downloads: downloads.length - downloadsBefore },
  };
});
