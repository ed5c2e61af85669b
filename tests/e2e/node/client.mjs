// Drives the real, unmodified dexie-cloud-addon under Node for the end-to-end tests.
//
// A "device" is one Dexie database (its own local name) with the cloud addon. Several devices
// live in one process; they share globalThis.fetch and globalThis.WebSocket, so the network
// controls below are keyed by URL prefix (usually the databaseUrl).
import './polyfills.mjs'; // must come before the addon
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import Dexie from 'dexie';
import dexieCloud from 'dexie-cloud-addon';

export { add, remove, replacePrefix } from 'dexie';
export { Dexie, isDeepStrictEqual };

// stdout carries exactly one JSON line (the scenario's result); the addon's chatter goes to stderr.
for (const level of ['log', 'info', 'debug', 'warn']) console[level] = console.error;

export const SCHEMA = { items: '@id, title, n, path, [a+b]' };

// ---------------------------------------------------------------------------------------------
// Network controls
// ---------------------------------------------------------------------------------------------

const realFetch = globalThis.fetch;
const offlinePrefixes = new Set();
const faults = [];
const sockets = new Set();

const isOffline = (url) => [...offlinePrefixes].some((prefix) => String(url).startsWith(prefix));

// DXC_E2E_TRACE=1 logs every request and answer to stderr.
const trace = process.env.DXC_E2E_TRACE === '1';

globalThis.fetch = async (input, init) => {
  const url = String(input?.url ?? input);
  if (isOffline(url)) throw new TypeError('fetch failed'); // what the addon sees without network
  const fault = faults.find((f) => f.matches(url, init));
  if (fault) faults.splice(faults.indexOf(fault), 1);
  const response = await realFetch(input, init);
  if (trace) {
    const answer = await response.clone().text();
    console.error(`>>> ${init?.method ?? 'GET'} ${url}\n${init?.body ?? ''}\n<<< ${response.status} ${answer}`);
  }
  if (!fault) return response;
  await response.arrayBuffer(); // the server has fully answered...
  fault.fired = true;
  throw new TypeError('fetch failed'); // ...but the answer never reaches the addon
};

/** Makes every request (fetch and WebSocket) to URLs starting with `prefix` fail, or work again. */
export function setOffline(prefix, offline = true) {
  if (!offline) return void offlinePrefixes.delete(prefix);
  offlinePrefixes.add(prefix);
  for (const ws of sockets) if (isOffline(ws.httpUrl)) ws.terminate();
}

/**
 * Loses the answer to the next POST <prefix>/sync whose body satisfies `predicate` (given the
 * parsed request): the server processes the request, the addon gets a network error.
 * Returns a record whose `fired` becomes true once that happened.
 */
export function loseNextSyncResponse(prefix, predicate = () => true) {
  const fault = {
    fired: false,
    matches: (url, init) =>
      url === `${prefix}/sync` && predicate(JSON.parse(init?.body ?? 'null') ?? {}),
  };
  faults.push(fault);
  return fault;
}

const socketOf = new Map(); // clientIdentity -> the newest WebSocket opened for it

globalThis.WebSocket = class extends globalThis.WebSocket {
  constructor(url, ...rest) {
    const httpUrl = String(url).replace(/^ws/, 'http');
    super(isOffline(httpUrl) ? 'ws://127.0.0.1:9/offline' : url, ...rest); // port 9: refused
    this.httpUrl = httpUrl;
    sockets.add(this);
    socketOf.set(new URL(httpUrl).searchParams.get('clientId'), this);
    this.addEventListener('close', () => sockets.delete(this));
  }
};

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

const openDevices = new Set();
const configs = new WeakMap();
let deviceNo = 0;

/**
 * Opens a device: `databaseUrl` (required), `userId` (demo login; omitted = anonymous),
 * `name` (local database name; default unique), `eagerSync` (false = local writes are only
 * pushed by explicit syncs), `webSocket` (false = server changes only arrive through pulls),
 * `schema` (Dexie stores; default SCHEMA), `addons` (Dexie addons before the cloud addon).
 * The initial sync (and the login's sync) are done when this resolves.
 */
export async function openDevice({
  databaseUrl, userId, name, eagerSync = true, webSocket = true, schema = SCHEMA, addons = [],
}) {
  const config = {
    databaseUrl,
    userId,
    eagerSync,
    webSocket,
    schema,
    addons,
    name: name ?? `device-${process.pid}-${++deviceNo}-${userId ?? 'anonymous'}`,
  };
  const db = new Dexie(config.name, { addons: [...addons, dexieCloud] });
  db.version(1).stores(schema);
  db.cloud.configure({
    databaseUrl,
    requireAuth: false,
    disableEagerSync: !eagerSync,
    disableWebSocket: !webSocket,
  });
  answerPrompts(db);
  configs.set(db, config);
  openDevices.add(db);
  await db.open();
  if (userId && db.cloud.currentUserId !== userId) {
    await db.cloud.login({ grant_type: 'demo', userId });
  }
  // The addon starts a sync of its own once the login is stored, after login() returned. A
  // device that syncs only when told lets it end first: a write made before it read the
  // pending changes would ride on it (and a refused one be rolled back) before the caller's push.
  if (!eagerSync) await pull(db);
  return db;
}

/** Closes the device and opens it again (same local database, same login): an app restart. */
export async function reopen(db) {
  closeDevice(db);
  return openDevice(configs.get(db));
}

export function closeDevice(db) {
  openDevices.delete(db);
  db.close();
}

/** Answers the addon's login dialogs like a user would; they are logged to stderr. */
function answerPrompts(db) {
  db.cloud.userInteraction.subscribe((ui) => {
    if (!ui) return;
    console.error(`[${db.name}] prompt ${ui.type}:`, JSON.stringify(ui.alerts ?? []));
    const { userId } = configs.get(db) ?? {};
    setTimeout(() => {
      if (ui.type === 'email' && userId) ui.onSubmit({ email: userId });
      else if (ui.type === 'message-alert' || ui.type === 'logout-confirmation') ui.onSubmit({});
      else ui.onCancel(); // anything else would need a human: fail instead of hanging
    }, 0);
  });
}

// ---------------------------------------------------------------------------------------------
// Syncing and waiting
// ---------------------------------------------------------------------------------------------

/**
 * Pushes every pending local change (resolves when nothing is left to push). Like the addon's
 * sync(), it throws at once while the device's last sync attempt has failed; pull() then works.
 */
export async function push(db, timeoutMs = 20000) {
  await withTimeout(db.cloud.sync({ purpose: 'push', wait: true }), timeoutMs, () => `push(${db.name})`);
}

/**
 * Pulls: makes sure a /sync round trip that STARTED after this call has completed. A single
 * sync({purpose:'pull', wait:true}) resolves as soon as any sync completes, which may be one that
 * was already in flight (e.g. started by a WebSocket message before the caller's precondition
 * held); the addon then runs the requested pull right after it, which the second call awaits.
 */
export async function pull(db, timeoutMs = 20000) {
  for (let i = 0; i < 2; i++) {
    await withTimeout(db.cloud.sync({ purpose: 'pull', wait: true }), timeoutMs, () => `pull(${db.name})`);
  }
}

/** Polls `condition` (may be async) every 50 ms until it is truthy; returns its value. */
export async function waitFor(condition, { timeoutMs = 10000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what()} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Observing
// ---------------------------------------------------------------------------------------------

/** The device's items as JSON-safe values (see describe), sorted by id. */
export async function snapshot(db) {
  const items = await db.items.toArray();
  items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return items.map(describe);
}

/**
 * A readable, JSON-safe rendering of any value the addon can store: exotic values become
 * tagged objects ({"Map": [...]}, {"Uint8Array": [...]}, "NaN", "undefined", ...).
 */
export function describe(value) {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(describe);
  if (value instanceof Date) return { Date: Number.isNaN(value.getTime()) ? 'Invalid' : value.toISOString() };
  if (value instanceof Map) return { Map: [...value].map(describe) };
  if (value instanceof Set) return { Set: [...value].map(describe) };
  if (value instanceof ArrayBuffer) return { ArrayBuffer: [...new Uint8Array(value)] };
  if (value instanceof DataView) return { DataView: [...new Uint8Array(value.buffer, value.byteOffset, value.byteLength)] };
  if (ArrayBuffer.isView(value)) return { [value.constructor.name]: [...value].map(describe) };
  const proto = Object.getPrototypeOf(value);
  const out = proto === Object.prototype || proto === null ? {} : { '(class)': value.constructor?.name };
  for (const [k, v] of Object.entries(value)) out[k] = describe(v);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scenario harness
// ---------------------------------------------------------------------------------------------

/**
 * Runs `body(args)` with the JSON arguments of argv[2], prints its result as one JSON line,
 * closes every device and exits (the addon's timers and sockets would keep the process alive).
 * Exit code 1 (and the stack on stderr) if the scenario itself failed.
 */
export async function scenario(body) {
  let code = 0;
  try {
    const result = await body(JSON.parse(process.argv[2] ?? '{}'));
    const line = `${JSON.stringify(result)}\n`;
    await new Promise((resolve) => process.stdout.write(line, resolve));
  } catch (error) {
    console.error('SCENARIO FAILED:', error?.stack ?? error);
    code = 1;
  } finally {
    for (const db of openDevices) db.close();
  }
  process.exit(code);
}

/** Waits until the device's WebSocket is connected (it has sent its first `ready`). */
export async function socketConnected(db, timeoutMs = 20000) {
  await waitFor(() => db.cloud.webSocketStatus.value === 'connected', {
    timeoutMs,
    what: `the WebSocket of ${db.name}`,
  });
}

/**
 * Puts the sockets of devices `a` and `b` (of user `user`) on different server workers, so that
 * what one sends must cross processes to reach the other: the worker of a socket is read from
 * the server log ("[pid] ... live open ... client=<clientIdentity> user=<user>"), and b's socket
 * is reopened until it differs. Returns {clientIds: {a, b}, workers: {a, b}}.
 */
export async function onDifferentWorkers(devices, user, serverLog) {
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
    return await waitFor(() => opened(name).at(-1), { what: `the log line of ${name}'s socket` });
  };
  const workers = { a: await workerOf('a'), b: await workerOf('b') };
  for (let attempt = 0; workers.a === workers.b; attempt++) {
    if (attempt === 30) throw new Error(`both sockets stayed on worker ${workers.a}`);
    const count = opened('b').length;
    socketOf.get(clientIds.b).close(); // the addon reconnects at once
    await waitFor(() => opened('b').length > count, { what: "device b's new socket" });
    workers.b = await workerOf('b');
  }
  return { clientIds, workers };
}
