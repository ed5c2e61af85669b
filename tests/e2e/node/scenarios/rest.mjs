// The REST data API next to the real client. The test has already POSTed one object through
// /all into the user's private realm and one through /public. The device must have both after
// its first sync; an object POSTed through /all while it is connected must reach it live (no
// pull); an object the addon writes must be readable via /my (with the addon's own token) and
// via /all (admin token); after DELETE /users/<id> with the user's own token, the device's next
// pull must drop the private data but keep the public object.
//
// args: {databaseUrl, userId, adminToken}
// result: {initial, livePosted, my, all, filtered, beforeDelete, deleted, afterDelete, realmsAfter}
import { openDevice, pull, push, scenario, snapshot, socketConnected, waitFor } from '../client.mjs';

async function rest(databaseUrl, method, path, token, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${databaseUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

scenario(async ({ databaseUrl, userId, adminToken }) => {
  const db = await openDevice({ databaseUrl, userId });
  await socketConnected(db);
  await pull(db);
  const initial = await snapshot(db);

  const live = await rest(databaseUrl, 'POST', '/all/items', adminToken, {
    realmId: userId,
    title: 'posted live',
    n: 7,
  });
  if (live.status !== 200) throw new Error(`POST /all/items: ${JSON.stringify(live)}`);
  const livePosted = await waitFor(() => db.items.get(live.body.id), {
    what: 'the object POSTed through /all to reach the device over its WebSocket',
  });

  const id = await db.items.add({ title: 'from the addon', tags: ['a', 'b'] });
  await push(db);
  const token = db.cloud.currentUser.value.accessToken;
  const my = await rest(databaseUrl, 'GET', '/my/items', token);
  const all = await rest(databaseUrl, 'GET', `/all/items/${encodeURIComponent(id)}`, adminToken);
  const filtered = await rest(
    databaseUrl, 'GET', `/all/items?title=${encodeURIComponent('from the addon')}`, adminToken,
  );
  const beforeDelete = await snapshot(db);

  const deleted = await rest(databaseUrl, 'DELETE', `/users/${encodeURIComponent(userId)}`, token);
  await pull(db);
  return {
    initial,
    livePosted,
    addonId: id,
    my,
    all,
    filtered,
    beforeDelete,
    deleted,
    afterDelete: await snapshot(db),
    realmsAfter: db.cloud.persistedSyncState.value.realms,
  };
});
