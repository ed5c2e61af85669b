// An anonymous device (no login) keeps its WebSocket open; the test imports public data on the
// server meanwhile. The device must show it without anyone calling sync() on it.
//
// args: {databaseUrl, titles (what the test imports), timeoutMs}
// result: {clientId, items}
import { openDevice, scenario, snapshot, socketConnected, waitFor } from '../client.mjs';

scenario(async ({ databaseUrl, titles, timeoutMs }) => {
  const device = await openDevice({ databaseUrl });
  await socketConnected(device);
  console.error(`socket connected: ${device.cloud.persistedSyncState.value.clientIdentity}`);
  const has = async () => {
    const present = new Set((await device.items.toArray()).map((item) => item.title));
    return titles.every((title) => present.has(title));
  };
  await waitFor(has, { timeoutMs, what: `the public items ${titles.join(', ')}` });
  return {
    clientId: device.cloud.persistedSyncState.value.clientIdentity,
    items: await snapshot(device),
  };
});
