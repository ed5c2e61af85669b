// A database copied from a source that keeps no revisions (as Dexie Cloud's own service), used
// by the real client at the copy (issue 14). The test (Python) copied the source by full reads;
// here a device opens the TARGET's URL and signs in: it must get everything its user has at the
// source. A change made at the source afterwards must reach it live (the copy's next read, then
// the socket), and what it writes must be stored at the target.
//
// args: {targetUrl, user, controlDir, changedTitle, timeoutMs}
// result: {initialTitles, finalTitles}
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDevice, pull, push, scenario, socketConnected, waitFor } from '../client.mjs';

scenario(async ({ targetUrl, user, controlDir, changedTitle, timeoutMs }) => {
  const db = await openDevice({ databaseUrl: targetUrl, userId: user });
  await socketConnected(db);
  await pull(db);
  const titles = async () => (await db.items.toArray()).map((i) => i.title).sort();
  const initialTitles = await titles();
  writeFileSync(join(controlDir, 'connected'), '');
  await waitFor(async () => (await db.items.where('title').equals(changedTitle).count()) === 1, {
    timeoutMs, what: 'the change made at the source',
  });
  await db.items.add({ title: 'written here' });
  await push(db, 30000);
  return { initialTitles, finalTitles: await titles() };
});
