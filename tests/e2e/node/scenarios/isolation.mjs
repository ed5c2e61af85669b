// Two logical databases of one installation, the same demo user in both. Each device writes
// its own items; each must see only its database's items. Then each device's access token is
// tried against the other database's /sync: it must be refused.
//
// args: {urlA, urlB, user}
// result: {a: items of device A, b: items of device B, crossStatus: [A's token on B, B's on A]}
import { openDevice, push, scenario, snapshot } from '../client.mjs';

async function syncStatus(url, token) {
  const response = await fetch(`${url}/sync`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ v: 2, dbID: url.split('/').pop(), schema: {}, lastPull: null,
                           baseRevs: [], changes: [] }),
  });
  return response.status;
}

scenario(async ({ urlA, urlB, user }) => {
  const a = await openDevice({ databaseUrl: urlA, userId: user });
  const b = await openDevice({ databaseUrl: urlB, userId: user });
  await a.items.add({ title: 'only in A' });
  await b.items.add({ title: 'only in B' });
  await push(a);
  await push(b);
  return {
    a: await snapshot(a),
    b: await snapshot(b),
    crossStatus: [
      await syncStatus(urlB, a.cloud.currentUser.value.accessToken),
      await syncStatus(urlA, b.cloud.currentUser.value.accessToken),
    ],
  };
});
