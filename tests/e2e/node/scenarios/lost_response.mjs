// Device A's push reaches the server, but the answer is lost (fetch throws a TypeError after the
// server has answered); the addon resends the same transactions 500 ms later. The server must
// not apply them twice: the add(1) counter ends at 1 and the insert exists once, on both devices.
// (The two writes are separate transactions: a resent insert alone could make a server refuse
// its whole transaction, which would hide a second application of an add(1) next to it.)
//
// args: {databaseUrl, user}
// result: {lost: bool (the answer was really lost), a, b (items at the end)}
import {
  add, loseNextSyncResponse, openDevice, pull, push, scenario, snapshot,
} from '../client.mjs';

scenario(async ({ databaseUrl, user }) => {
  // Only A's explicit push sends its writes: both go in the request whose answer is lost.
  const a = await openDevice({ databaseUrl, userId: user, eagerSync: false, webSocket: false });
  const b = await openDevice({ databaseUrl, userId: user });
  const counter = await a.items.add({ title: 'counter', count: 0 });
  await push(a);
  await pull(b);

  const fault = loseNextSyncResponse(databaseUrl, (request) => request.changes.length > 0);
  await a.items.update(counter, { count: add(1) });
  await a.items.add({ title: 'inserted once' });
  await push(a); // covers the lost attempt and the addon's retry
  await pull(b);
  await pull(a);
  return { lost: fault.fired, a: await snapshot(a), b: await snapshot(b) };
});
