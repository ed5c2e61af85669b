// A user logs in by e-mail: the real addon asks for the address and the one-time password through
// db.cloud.userInteraction; the code is read from the test's web-hook receiver (the "inbox"), the
// way a user reads their mail. The first `wrongCodes` answers are wrong codes. After the login the
// device adds and pushes `pushes` items one at a time, then pulls.
//
// args: {databaseUrl, email, mailbox (GET <mailbox>?to=<email> lists the mails received), wrongCodes,
//        pushes}
// result: {loginError, userId, prompts: [{type, title, alerts}], grants: [grant_type of each /token
//          request, "otp" step 2 as "otp-verify"], items, syncError}
import { Dexie, SCHEMA, pull, push, scenario, snapshot, waitFor } from '../client.mjs';
import dexieCloud from 'dexie-cloud-addon';

const grants = [];
const innerFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = String(input?.url ?? input);
  if (url.endsWith('/token') && typeof init?.body === 'string') {
    const body = JSON.parse(init.body);
    grants.push(body.grant_type === 'otp' && 'otp' in body ? 'otp-verify' : body.grant_type);
  }
  return innerFetch(input, init);
};

async function mailedCode(mailbox, email, count) {
  const mails = await waitFor(async () => {
    const answer = await innerFetch(`${mailbox}?to=${encodeURIComponent(email)}`);
    const list = await answer.json();
    return list.length >= count && list;
  }, { what: `mail #${count} to ${email}` });
  return /OTP: ([A-Z0-9]{8})/.exec(mails[count - 1].text)[1];
}

scenario(async ({ databaseUrl, email, mailbox, wrongCodes = 0, pushes = 0 }) => {
  const db = new Dexie(`otp-${process.pid}`, { addons: [dexieCloud] });
  db.version(1).stores(SCHEMA);
  db.cloud.configure({ databaseUrl, requireAuth: false, disableWebSocket: true });
  const prompts = [];
  let wrongLeft = wrongCodes;
  db.cloud.userInteraction.subscribe((ui) => {
    if (!ui) return;
    prompts.push({
      type: ui.type,
      title: ui.title,
      alerts: (ui.alerts ?? []).map(({ type, messageCode, message }) => ({ type, messageCode, message })),
    });
    (async () => {
      if (ui.type === 'email') return ui.onSubmit({ email });
      if (ui.type === 'otp') {
        const code = await mailedCode(mailbox, email, grants.filter((g) => g === 'otp').length);
        const wrong = code === 'ZZZZZZZZ' ? 'YYYYYYYY' : 'ZZZZZZZZ';
        return ui.onSubmit({ otp: wrongLeft-- > 0 ? wrong : code });
      }
      if (ui.type === 'message-alert') return ui.onSubmit({});
      return ui.onCancel();
    })().catch((error) => { console.error('prompt answer failed', error); ui.onCancel(); });
  });
  await db.open();
  const result = { prompts, grants };
  try {
    await db.cloud.login({ email });
  } catch (error) {
    result.loginError = `${error?.name}: ${error?.message}`;
  }
  result.userId = db.cloud.currentUserId;
  if (!result.loginError) {
    try {
      for (let i = 1; i <= pushes; i++) {
        await db.items.add({ title: `item ${i}` });
        await push(db);
      }
      await pull(db);
    } catch (error) {
      result.syncError = String(error?.message ?? error);
    }
    result.items = await snapshot(db);
  }
  db.close();
  return result;
});
