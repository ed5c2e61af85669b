// Sharing between users with the real client: Alice creates a realm with an item and invites
// Bob by e-mail; Bob finds the invitation in db.cloud.invites and accepts it; both edit and see
// each other's changes; an edit Bob's permissions do not cover is rolled back on his device;
// when Alice removes Bob's member row, the realm leaves his device. The invitation and the
// removal reach Bob live, through his WebSocket. A third user and an anonymous client see
// none of it at any point.
//
// args: {databaseUrl, alice, bob, carol}
// result: {realmId, invite (as Bob saw it), bobAfterAccept, bobLocalEdit, bobAfterRefusal,
//          aliceAfterBob, bobMembers, carol, anonymous, bobAfterRemoval, bobRealmsAfterRemoval}
import { openDevice, pull, push, scenario, snapshot, waitFor } from '../client.mjs';

const PERMISSIONS = { add: ['items'], update: { items: ['done'] } };

scenario(async ({ databaseUrl, alice, bob, carol }) => {
  const a = await openDevice({ databaseUrl, userId: alice });
  const b = await openDevice({ databaseUrl, userId: bob });
  const c = await openDevice({ databaseUrl, userId: carol });
  const anonymous = await openDevice({ databaseUrl });
  const outsiders = async () => {
    for (const db of [c, anonymous]) await pull(db);
    return {
      carol: { items: await snapshot(c), realms: await c.realms.toArray(), members: await c.members.toArray() },
      anonymous: { items: await snapshot(anonymous), realms: await anonymous.realms.toArray() },
    };
  };

  const realmId = await a.transaction('rw', a.realms, a.members, a.items, async () => {
    const id = await a.realms.add({ name: 'Groceries', represents: 'a shopping list' });
    await a.items.add({ title: 'milk', realmId: id });
    await a.members.add({ realmId: id, email: bob, name: 'Bob', invite: true, permissions: PERMISSIONS });
    return id;
  });
  await push(a);

  // No pull on Bob's device: the invitation reaches it through its WebSocket (realm-added).
  let invites = [];
  const subscription = b.cloud.invites.subscribe((value) => (invites = value));
  // The invitation's member row and realm row arrive in one sync, but the liveQuery behind
  // db.cloud.invites may emit between the client's two table writes: wait for both.
  const invite = await waitFor(() => invites.find((i) => i.realmId === realmId && i.realm), {
    what: "Bob's invitation with its realm",
  });
  const seen = { realmName: invite.realm?.name, invitedBy: invite.invitedBy, accepted: invite.accepted ?? null };
  const beforeAccept = await outsiders();
  await invite.accept();
  await push(b);
  await pull(b);
  subscription.unsubscribe();
  const bobAfterAccept = await snapshot(b);

  const milk = await b.items.where('title').equals('milk').first(); // items index no realmId
  await b.items.add({ title: 'eggs', realmId });
  await b.items.update(milk.id, { done: true });
  await b.items.update(milk.id, { title: 'MILK (edited by Bob)' }); // not covered: rolled back
  const bobLocalEdit = await snapshot(b);
  await push(b);
  await pull(b);
  const bobAfterRefusal = await snapshot(b);
  await pull(a);
  const aliceAfterBob = await snapshot(a);
  const bobMembers = (await b.members.where({ realmId }).toArray()).map((m) => ({
    userId: m.userId ?? null, email: m.email ?? null, accepted: Boolean(m.accepted),
  }));
  const whileShared = await outsiders();

  const bobsRow = await a.members.where({ realmId, email: bob }).first();
  await a.members.delete(bobsRow.id);
  await push(a);
  // Again no pull: the WebSocket tells Bob's device (realm-removed), which then purges it.
  await waitFor(() => !b.cloud.persistedSyncState.value.realms.includes(realmId), {
    what: "the realm to leave Bob's realm set",
  });
  return {
    realmId,
    invite: seen,
    bobAfterAccept,
    bobLocalEdit,
    bobAfterRefusal,
    aliceAfterBob,
    bobMembers,
    outsiders: [beforeAccept, whileShared, await outsiders()],
    bobAfterRemoval: await snapshot(b),
    bobRealmsAfterRemoval: b.cloud.persistedSyncState.value.realms,
    bobRealmRowsAfterRemoval: (await b.realms.toArray()).map((r) => r.realmId),
  };
});
