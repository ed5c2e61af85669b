// A user stores private data; then an anonymous client (no login, requireAuth: false) syncs.
// It must get the public realm and nothing of the user's.
//
// args: {databaseUrl, user}
// result: {user: items of the user's device, anonymous: items of the anonymous device,
//          anonymousRealms: realms the server granted the anonymous client}
import { openDevice, push, scenario, snapshot } from '../client.mjs';

scenario(async ({ databaseUrl, user }) => {
  const owner = await openDevice({ databaseUrl, userId: user });
  await owner.items.bulkAdd([{ title: 'private 1' }, { title: 'private 2', n: 2 }]);
  await push(owner);
  const anonymous = await openDevice({ databaseUrl });
  return {
    user: await snapshot(owner),
    anonymous: await snapshot(anonymous),
    anonymousUserId: anonymous.cloud.currentUserId,
    anonymousRealms: anonymous.cloud.persistedSyncState.value.realms,
  };
});
