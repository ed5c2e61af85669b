// One device that stays connected while the test changes the database from the outside (the
// dexie-cloud CLI: import, clear-table, clear-realm). For each round it pulls, records its items
// and realms, writes them to `<dir>/ready-<round>.json`, then waits for `<dir>/go-<round>` (the test
// creates it once its CLI command is done) before the next round.
//
// args: {databaseUrl, user, dir, rounds}
// result: {rounds: [{items: [...], realms: [realmId, ...], members: [id, ...]}, ...]}
import { existsSync, writeFileSync } from 'node:fs';
import { openDevice, pull, scenario, snapshot, waitFor } from '../client.mjs';

scenario(async ({ databaseUrl, user, dir, rounds }) => {
  const db = await openDevice({ databaseUrl, userId: user });
  const seen = [];
  for (let round = 0; round < rounds; round++) {
    if (round > 0) {
      await waitFor(() => existsSync(`${dir}/go-${round}`), { timeoutMs: 50000, what: `go-${round}` });
    }
    await pull(db);
    const state = {
      items: await snapshot(db),
      realms: (await db.realms.toArray()).map((r) => r.realmId).sort(),
      members: (await db.members.toArray()).map((m) => m.id).sort(),
    };
    seen.push(state);
    writeFileSync(`${dir}/ready-${round}.json`, JSON.stringify(state));
  }
  return { rounds: seen };
});
