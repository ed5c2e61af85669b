// A device keeps its WebSocket open past the expiry of its access token (the server runs with a
// short DXC_ACCESS_TOKEN_TTL). The server must ask it to refresh (token-expired); the device
// reconnects with the new token and keeps receiving live changes from another device.
//
// args: {databaseUrl, user, timeoutMs}
// result: {clientId, refreshed (the watcher's token changed), items (the watcher's items)}
import { openDevice, scenario, snapshot, socketConnected, waitFor } from '../client.mjs';

scenario(async ({ databaseUrl, user, timeoutMs }) => {
  const watcher = await openDevice({ databaseUrl, userId: user });
  const token = () => watcher.cloud.currentUser.value.accessToken;
  // The device may connect anonymously before its login completes: take the logged-in token.
  await waitFor(() => watcher.cloud.currentUser.value.isLoggedIn && token(), { what: 'the login' });
  await socketConnected(watcher);
  const first = token();
  await waitFor(() => token() !== first, { timeoutMs, what: 'the watcher to refresh its token' });
  await socketConnected(watcher);
  const writer = await openDevice({ databaseUrl, userId: user, webSocket: false });
  await writer.items.add({ title: 'after the refresh' });
  await waitFor(async () => (await watcher.items.where('title').equals('after the refresh').count()) === 1, {
    timeoutMs: 15000,
    what: 'the write to reach the watcher',
  });
  return {
    clientId: watcher.cloud.persistedSyncState.value.clientIdentity,
    refreshed: token() !== first,
    items: await snapshot(watcher),
  };
});
