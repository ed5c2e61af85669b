// Two devices of one user go offline together, both edit (different objects and the same
// object), come back online (the app restarts, which pushes what is pending; A first, then B)
// and pull. Both must end with the same items.
//
// args: {databaseUrl, user}
// result: {offline: {a, b} (items while offline), errors: {a, b} (sync errors seen offline),
//          a, b (items at the end)}
import {
  openDevice, pull, push, reopen, scenario, setOffline, snapshot, waitFor,
} from '../client.mjs';

scenario(async ({ databaseUrl, user }) => {
  let a = await openDevice({ databaseUrl, userId: user });
  let b = await openDevice({ databaseUrl, userId: user });
  const [x, y, z] = await a.items.bulkAdd(
    [{ title: 'x', n: 1 }, { title: 'y', n: 2 }, { title: 'z', n: 3 }],
    { allKeys: true },
  );
  await push(a);
  await pull(b);

  setOffline(databaseUrl);
  await a.items.update(x, { title: 'x by A', n: 10 });
  await a.items.add({ title: 'new by A' });
  await a.items.delete(z);
  await b.items.update(x, { title: 'x by B', extra: 'B' });
  await b.items.update(y, { n: 20 });
  await b.items.add({ title: 'new by B' });
  await b.items.update(z, { n: 30 });
  // Each write tried to push; wait until both devices have given up (the addon retries once).
  const errorOf = (db) => () => db.cloud.persistedSyncState.value?.error;
  const errors = {
    a: await waitFor(errorOf(a), { what: 'a failed sync on A' }),
    b: await waitFor(errorOf(b), { what: 'a failed sync on B' }),
  };
  const offline = { a: await snapshot(a), b: await snapshot(b) };

  // Back online. The addon would only retry on its own 20 s after the failure (and ignores
  // sync requests until then), so the app restarts, which pushes what is pending. (pull()
  // pushes too; push() would throw at once on the error the addon still holds.)
  setOffline(databaseUrl, false);
  a = await reopen(a);
  await pull(a);
  b = await reopen(b);
  await pull(b);
  await pull(a);
  return { offline, errors, a: await snapshot(a), b: await snapshot(b) };
});
