// A device that keeps writing while the test breaks the server (kills workers, stops PostgreSQL
// or Redis, HUPs gunicorn), and a second device of the same user that only listens on its
// WebSocket. Used by test_faults_e2e.py.
//
// Device A writes `batch` items in one transaction per round and pushes them. A push that
// resolves acknowledges every item written before it; a push that fails is counted and the
// items stay pending (the addon resends them). Each round's state goes to `progressFile`, so the
// test knows when a push is in flight. When `stopFile` exists, A retries until everything is
// pushed, then writes one more item that device B must receive through its socket alone (B never
// calls sync() after opening): live changes work again. Finally both devices pull.
//
// args: {databaseUrl, user, batch, stopFile, progressFile}
// result: {run, acked: [titles], failures, errors: [first messages], live: bool,
//          a: [titles], b: [titles]}
import { existsSync, writeFileSync } from 'node:fs';
import { openDevice, pull, push, scenario, socketConnected, waitFor } from '../client.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const titlesOf = async (db) => (await db.items.toArray()).map((item) => item.title).sort();

scenario(async ({ databaseUrl, user, batch, stopFile, progressFile }) => {
  const a = await openDevice({ databaseUrl, userId: user, eagerSync: false, webSocket: false });
  const b = await openDevice({ databaseUrl, userId: user });
  await socketConnected(b);
  const run = Math.random().toString(36).slice(2, 8);
  const acked = [];
  const errors = [];
  let pending = [];
  let failures = 0;
  let round = 0;
  const report = (state) =>
    writeFileSync(progressFile, JSON.stringify({ round, acked: acked.length, failures, state }));

  // One push attempt; after a failure the addon's sync() refuses at once, a pull starts over.
  const settle = async () => {
    try {
      await push(a, 15000);
      acked.push(...pending);
      pending = [];
      return true;
    } catch (error) {
      failures++;
      if (errors.length < 5) errors.push(String(error?.message ?? error));
      await sleep(300);
      await pull(a, 15000).catch(() => {});
      return false;
    }
  };

  report('started');
  while (!existsSync(stopFile)) {
    round++;
    const titles = Array.from({ length: batch }, (_, j) => `${run} r${round} #${j}`);
    await a.items.bulkAdd(titles.map((title, n) => ({ title, n })));
    pending.push(...titles);
    report('pushing');
    await settle();
    report('idle');
  }
  await waitFor(settle, { timeoutMs: 60000, what: 'the pending writes to be acknowledged' });

  const liveTitle = `${run} live`;
  await a.items.add({ title: liveTitle, n: -1 });
  await waitFor(settle, { timeoutMs: 30000, what: 'the live item to be pushed' });
  const live = await waitFor(async () => (await b.items.where('title').equals(liveTitle).count()) === 1, {
    timeoutMs: 20000,
    what: 'the live item to reach device B',
  }).catch(() => false);

  await pull(a, 30000);
  await pull(b, 30000);
  return { run, acked, failures, errors, live, a: await titlesOf(a), b: await titlesOf(b) };
});
