// A database moves to another installation while its clients keep working (issue 14).
//
// Two devices of one user (a writer adding an item every 100 ms, a watcher with a socket) use
// the SOURCE's databaseUrl throughout. The test (Python) replicates meanwhile, then runs
// `flask dxc redirect` and says so through files in `controlDir`. The devices, unmodified, must
// keep syncing (forwarded by the source), the watcher must keep receiving live changes (its
// socket relayed), nobody may be asked to log in again. Then the app is "republished": the
// writer reopens its same local database with the TARGET's URL and must continue with its old
// login (also after its access token expired: a refresh with the source's refresh token).
//
// args: {sourceUrl, targetUrl, user, controlDir, timeoutMs}
// result: {written, watcherTitles, republishedTitles, prompts, userAfterRepublish,
//          refreshed, beforeRedirect}
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeDevice, openDevice, pull, push, scenario, socketConnected, waitFor } from '../client.mjs';

scenario(async ({ sourceUrl, targetUrl, user, controlDir, timeoutMs }) => {
  const prompts = [];
  const name = `migrating-writer-${process.pid}`;
  const writer = await openDevice({ databaseUrl: sourceUrl, userId: user, name });
  const watcher = await openDevice({ databaseUrl: sourceUrl, userId: user });
  for (const db of [writer, watcher]) {
    db.cloud.userInteraction.subscribe((ui) => ui && prompts.push(ui.type));
  }
  await socketConnected(watcher);
  const titles = async (db) => (await db.items.toArray()).map((i) => i.title);
  const has = (db, title) => async () => (await db.items.where('title').equals(title).count()) === 1;

  const written = [];
  let writing = true;
  const writes = (async () => {
    for (let n = 0; writing; n++) {
      const title = `w-${n}`;
      await writer.items.add({ title, n });
      written.push(title);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();

  writeFileSync(join(controlDir, 'ready'), '');
  await waitFor(() => existsSync(join(controlDir, 'redirected')), { timeoutMs, what: 'the redirect' });
  const beforeRedirect = written.length;
  // Writes made after the redirect reach the watcher live, through the relayed socket.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await writer.items.add({ title: 'after the redirect' });
  await waitFor(has(watcher, 'after the redirect'), { timeoutMs: 30000, what: 'a live change after the redirect' });
  writing = false;
  await writes;
  // A write that met the switch-over moment got a 503 (retried by the addon); push() throws at
  // once after a failed attempt, a pull syncs again.
  await pull(writer, 30000);
  await push(writer, 30000);
  const last = written[written.length - 1];
  await waitFor(has(watcher, last), { timeoutMs: 30000, what: `the watcher to get ${last}` });
  const watcherTitles = await titles(watcher);

  // Republished app: the same local database, the new URL; its stored login goes on.
  closeDevice(writer);
  const republished = await openDevice({ databaseUrl: targetUrl, name });
  republished.cloud.userInteraction.subscribe((ui) => ui && prompts.push(ui.type));
  const userAfterRepublish = republished.cloud.currentUserId;
  // Its access token runs out: the addon refreshes it with the source's refresh token.
  const before = republished.cloud.currentUser.value.accessToken;
  await republished.table('$logins').update(user, { accessTokenExpiration: new Date(Date.now() - 1000) });
  await republished.items.add({ title: 'republished' });
  await push(republished, 30000);
  await pull(republished, 30000);
  const refreshed = republished.cloud.currentUser.value.accessToken !== before;
  await waitFor(has(watcher, 'republished'), { timeoutMs: 30000, what: 'the republished write at the watcher' });
  return {
    written: [...written, 'after the redirect', 'republished'],
    watcherTitles: await titles(watcher),
    watcherBeforeRepublish: watcherTitles,
    republishedTitles: await titles(republished),
    prompts,
    userAfterRepublish,
    refreshed,
    beforeRedirect,
  };
});
