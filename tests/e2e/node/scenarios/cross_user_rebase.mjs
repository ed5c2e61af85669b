// Another user's where-clauses must not reach Alice's writes. Alice's phone writes while it is
// not syncing (no eager sync, no socket), so its writes carry an old base revision. Meanwhile
// Mallory, another user of the same database, runs where().modify() and clear() on the same
// table: the server replays such where-clause operations onto older writes (rebasing), and
// must do so only with their issuer's rights. Then the phone pushes, and everyone pulls.
//
// args: {databaseUrl, alice, mallory}
// result: {phone, laptop (Alice's other device), mallory (items at the end)}
import { openDevice, pull, push, scenario, snapshot } from '../client.mjs';

scenario(async ({ databaseUrl, alice, mallory }) => {
  const phone = await openDevice({ databaseUrl, userId: alice, eagerSync: false, webSocket: false });
  const laptop = await openDevice({ databaseUrl, userId: alice });
  const m = await openDevice({ databaseUrl, userId: mallory });

  await phone.items.bulkAdd([{ title: 'milk', n: 1 }, { title: 'eggs', n: 2 }]);

  await m.items.bulkAdd([{ title: 'milk', n: 9 }, { title: 'bread', n: 8 }]);
  await push(m);
  await m.items.where('title').equals('milk').modify({ title: 'pwned', n: 666 });
  await push(m);
  await m.items.clear();
  await push(m);

  await push(phone);
  await pull(phone);
  await pull(laptop);
  await pull(m);
  return { phone: await snapshot(phone), laptop: await snapshot(laptop), mallory: await snapshot(m) };
});
