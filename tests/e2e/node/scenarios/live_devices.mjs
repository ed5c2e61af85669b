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
import { readFileSync } from 'node:fs';
import { openDevice, scenario, snapshot, socketConnected, waitFor } from '../client.mjs';

const socketOf = new Map(); // clientIdentity -> the newest WebSocket opened for it
globalThis.WebSocket = class extends globalThis.WebSocket {
  constructor(url, ...rest) {
    super(url, ...rest);
    socketOf.set(new URL(String(url)).searchParams.get('clientId'), this);
  }
};

scenario(async ({ databaseUrl, user, rounds, serverLog }) => {
  const devices = {
    a: await openDevice({ databaseUrl, userId: user }),
    b: await openDevice({ databaseUrl, userId: user }),
  };
  const clientIds = {
    a: devices.a.cloud.persistedSyncState.value.clientIdentity,
    b: devices.b.cloud.persistedSyncState.value.clientIdentity,
  };
  const opened = (name) =>
    readFileSync(serverLog, 'utf8')
      .split('\n')
      .filter((line) => line.includes(`live open `) && line.includes(` client=${clientIds[name]} user=${user} `))
      .map((line) => /\[(\d+)\]/.exec(line)[1]);
  const workerOf = async (name) => {
    await socketConnected(devices[name]);
    return (await waitFor(() => opened(name).at(-1), { what: `the log line of ${name}'s socket` }));
  };
  const workers = { a: await workerOf('a'), b: await workerOf('b') };
  for (let attempt = 0; workers.a === workers.b; attempt++) {
    if (attempt === 30) throw new Error(`both sockets stayed on worker ${workers.a}`);
    const count = opened('b').length;
    socketOf.get(clientIds.b).close(); // the addon reconnects at once
    await waitFor(() => opened('b').length > count, { what: "device b's new socket" });
    workers.b = await workerOf('b');
  }

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
