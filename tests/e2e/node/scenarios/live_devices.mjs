// Live changes between two devices of one user: both keep their WebSocket open and take turns
// writing. A write leaves its device through the eager push (the writer's only request); the
// other device must show it without anyone calling sync() on it.
//
// The two sockets are put on different server workers, so that one direction of every pair of
// rounds crosses processes (both devices send their /sync over one kept-alive connection, which
// one worker serves): the worker of a socket is read from the server log ("[pid] ... live open
// ... client=<clientIdentity> user=<user>"), and device B's socket is reopened until it differs.
//
// args: {databaseUrl, user, rounds, serverLog (path of the server's log file)}
// result: {clientIds: {a, b}, workers: {a, b}, rounds: [{writer, title, ms}], a, b (items)}
import { onDifferentWorkers, openDevice, scenario, snapshot, waitFor } from '../client.mjs';

scenario(async ({ databaseUrl, user, rounds, serverLog }) => {
  const devices = {
    a: await openDevice({ databaseUrl, userId: user }),
    b: await openDevice({ databaseUrl, userId: user }),
  };
  const { clientIds, workers } = await onDifferentWorkers(devices, user, serverLog);

  const log = [];
  const run = Math.random().toString(36).slice(2, 8); // titles of earlier runs must not match
  for (let i = 0; i < rounds; i++) {
    const [writer, reader] = i % 2 ? ['b', 'a'] : ['a', 'b'];
    const title = `live ${i} by ${writer} (${run})`;
    const started = Date.now();
    await devices[writer].items.add({ title, n: i });
    await waitFor(async () => (await devices[reader].items.where('title').equals(title).count()) === 1, {
      timeoutMs: 15000,
      what: `"${title}" to reach device ${reader}`,
    });
    log.push({ writer, title, ms: Date.now() - started });
  }
  return { clientIds, workers, rounds: log, a: await snapshot(devices.a), b: await snapshot(devices.b) };
});
