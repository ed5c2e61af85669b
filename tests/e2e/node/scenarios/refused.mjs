// A logged-in device makes, in ONE sync, allowed writes and writes the server must refuse:
// an insert into rlm-public, an insert into another user's private realm and an update of a
// public object. The refused ones must be rolled back on the device and reach nobody.
//
// args: {databaseUrl, user, otherUser, publicId (an item in rlm-public)}
// result: {local (A's items before the sync), a (after), sameUser (A's second device),
//          otherUser (the other user's device)}
import { openDevice, pull, push, scenario, snapshot } from '../client.mjs';

scenario(async ({ databaseUrl, user, otherUser, publicId }) => {
  const other = await openDevice({ databaseUrl, userId: otherUser });
  const sameUser = await openDevice({ databaseUrl, userId: user });
  // Neither writes nor WebSocket messages start a sync on A: its one push carries everything.
  const a = await openDevice({ databaseUrl, userId: user, eagerSync: false, webSocket: false });

  await a.items.add({ title: 'allowed before' });
  await a.items.add({ title: 'refused: public', realmId: 'rlm-public' });
  await a.items.add({ title: "refused: other user's realm", realmId: otherUser });
  await a.items.update(publicId, { title: 'refused: public update' });
  await a.items.add({ title: 'allowed after' });
  const local = await snapshot(a);

  await push(a); // one /sync carrying all five transactions
  await pull(a);
  for (const db of [sameUser, other]) await pull(db);
  return {
    local,
    a: await snapshot(a),
    sameUser: await snapshot(sameUser),
    otherUser: await snapshot(other),
  };
});
