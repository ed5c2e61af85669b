// Generates tests/unit/tson_vectors.json with the real client's TSON codec.
//
//   cd tests/tools && npm ci && node make_tson_vectors.mjs
//
// The codec is assembled the way dexie-cloud-addon's src/TSON.ts does it
// (dexie-cloud-addon 4.4.x, spec sync.md §2.3): TypesonSimplified from
// dexie-cloud-common with its binary, number, Date, Set and Map type defs,
// plus undefined, File and Dexie's PropModification. (The addon's `bigint`
// def is only added on engines without native BigInt, so Node has none.)
//
// Each vector is {name, tson, ...} where `tson` is exactly what the codec's
// stringify produced, except for vectors with `"source": "hand"`, which are
// hand-written wire text that the client may receive. Then, as the client
// would see it:
//   js_reencoded     stringify(parse(tson)) by the real codec, or
//   js_parse_error   the error the real codec's parse throws.
// `expect` is what dxc.tson must emit after a round trip where it
// deliberately differs from `tson` (with `expect_js_reencoded` showing that
// the client parses that form as intended); `dxc_error` marks text that
// dxc.tson deliberately rejects although the client accepts it.

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  TypesonSimplified,
  arrayBufferTypeDef,
  blobTypeDef,
  dateTypeDef,
  fileTypeDef,
  mapTypeDef,
  numberTypeDef,
  setTypeDef,
  typedArrayTypeDefs,
  undefinedTypeDef,
  FakeBlob,
} from "dexie-cloud-common";
import { PropModification, add, remove, replacePrefix } from "dexie";

// --- Blob/File under Node -------------------------------------------------
// The codec reads Blob/File bytes synchronously (readBlobSync: a synchronous
// XMLHttpRequest on URL.createObjectURL(blob), responseText decoded as
// "x-user-defined"). Node has Blob and File but no XMLHttpRequest and no
// synchronous read, so remember the bytes of every Blob/File built here and
// serve them through a minimal synchronous XMLHttpRequest. The codec's own
// Blob/File type defs still do all the encoding.
const blobBytes = new WeakMap();
const urlBytes = new Map();
let nextUrl = 0;

function bytesOf(parts) {
  const chunks = parts.map((p) =>
    typeof p === "string"
      ? new TextEncoder().encode(p)
      : p instanceof ArrayBuffer
        ? new Uint8Array(p)
        : ArrayBuffer.isView(p)
          ? new Uint8Array(p.buffer, p.byteOffset, p.byteLength)
          : blobBytes.get(p),
  );
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const NodeBlob = globalThis.Blob;
const NodeFile = globalThis.File;
globalThis.Blob = class Blob extends NodeBlob {
  constructor(parts = [], options) {
    super(parts, options);
    blobBytes.set(this, bytesOf(parts));
  }
};
globalThis.File = class File extends NodeFile {
  constructor(parts, name, options) {
    super(parts, name, options);
    blobBytes.set(this, bytesOf(parts));
  }
};
URL.createObjectURL = (blob) => {
  const url = `blob:vectors/${nextUrl++}`;
  urlBytes.set(url, blobBytes.get(blob));
  return url;
};
URL.revokeObjectURL = (url) => urlBytes.delete(url);
globalThis.XMLHttpRequest = class XMLHttpRequest {
  overrideMimeType() {}
  open(method, url, async) {
    if (async !== false) throw new Error("only synchronous requests");
    this.url = url;
  }
  send() {
    const bytes = urlBytes.get(this.url);
    this.status = 200;
    // x-user-defined: 0x00-0x7F as is, 0x80-0xFF as U+F780-U+F7FF.
    this.responseText = Array.from(bytes, (b) =>
      String.fromCharCode(b < 0x80 ? b : 0xf700 + b),
    ).join("");
  }
};

// --- The addon's codec ----------------------------------------------------
const TSON = TypesonSimplified(
  typedArrayTypeDefs,
  arrayBufferTypeDef,
  blobTypeDef,
  numberTypeDef,
  dateTypeDef,
  setTypeDef,
  mapTypeDef,
  {
    ...undefinedTypeDef,
    ...fileTypeDef,
    PropModification: {
      test: (val) => val instanceof PropModification,
      replace: (pm) => ({ $t: "PropModification", ...pm["@@propmod"] }),
      revive: ({ $t, ...spec }) => new PropModification(spec),
    },
  },
);

// --- Values ---------------------------------------------------------------
const bytes = (...b) => new Uint8Array(b);
const buf16 = bytes(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15).buffer;

const vectors = [];
function v(name, value, extra = {}) {
  vectors.push({ name, tson: TSON.stringify(value), ...extra });
}
function hand(name, tson, extra = {}) {
  vectors.push({ name, source: "hand", tson, ...extra });
}

// Plain JSON
v("plain object", { a: 1, b: "two", c: true, d: null, e: [1, 2, 3], f: { g: {} } });
v("plain array top level", [1, "a", null, false, [], {}]);
v("plain string top level", "hello");
v("integer top level", 42);
v("empty object", {});

// Numbers
v("NaN", NaN);
v("numbers special", { nan: NaN, inf: Infinity, ninf: -Infinity });
v("numbers special in array", [NaN, Infinity, -Infinity, 1]);
v("negative zero", { z: -0, arr: [-0] });
v("numbers plain", {
  int: 3,
  neg: -17,
  frac: 0.1,
  half: -1.5,
  big: 2 ** 53,
  bigger: 2 ** 60,
  e21: 1e21,
  tiny: 1e-7,
  min: 5e-324,
  max: Number.MAX_VALUE,
  e16: 1e16,
});

// undefined
v("undefined property", { a: undefined, b: 1 });
v("undefined top level", undefined);
v("undefined nested in object in array", [{ a: undefined }]);
v("undefined in array", { a: [1, undefined, 3] }, {
  expect: '{"a":[1,null,3]}',
});
v("undefined in top-level array", [undefined], { expect: "[null]" });
v("undefined in Set", new Set([1, undefined]), {
  expect: '{"$t":"Set","v":[1,null]}',
});
v("undefined as Map key and value", new Map([["k", undefined], [undefined, 2]]));

// Dates
v("Date epoch", new Date(0));
v("Date typical", { due: new Date("2024-01-02T03:04:05.006Z") });
v("Date invalid", new Date(NaN));
v("Date extended year +010000", new Date(Date.UTC(10000, 0, 1)));
v("Date year -000001", new Date(-62198755200000));
v("Date year 0000", new Date(-62167219200000));
v("Date max", new Date(8.64e15));
v("Date min", new Date(-8.64e15));
v("Date before epoch with ms", new Date(-1));
v("Dates in array", [new Date(1718000000000), new Date(NaN)]);
{
  // A deterministic sweep over the whole Date range (LCG), to pin toISOString.
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const sweep = [];
  for (let i = 0; i < 300; i++) {
    const scale = [8.64e15, 1e14, 1e12, 1e9][i % 4];
    sweep.push(new Date(Math.trunc((rnd() * 2 - 1) * scale)));
  }
  v("Date sweep", sweep);
}
hand("Date with offset", '{"$t":"Date","v":"2024-05-06T07:08:09.5+02:00"}');
hand("Date date-only", '{"$t":"Date","v":"2024-05-06"}');
hand("Date year-month", '{"$t":"Date","v":"2024-05"}');
hand("Date many fraction digits", '{"$t":"Date","v":"2024-05-06T07:08:09.1239Z"}');
hand("Date 24:00", '{"$t":"Date","v":"2024-02-29T24:00:00.000Z"}');
hand("Date day overflow", '{"$t":"Date","v":"2024-02-30T00:00:00.000Z"}');
hand("Date bad minute", '{"$t":"Date","v":"2024-05-06T07:60Z"}');
hand("Date -000000", '{"$t":"Date","v":"-000000-01-01T00:00:00.000Z"}');
hand("Date past max", '{"$t":"Date","v":"+275760-09-13T00:00:00.001Z"}');
hand("Date garbage", '{"$t":"Date","v":"yesterday"}');

// Binary
v("ArrayBuffer empty", new ArrayBuffer(0));
v("ArrayBuffer", bytes(1, 2, 3).buffer);
v("ArrayBuffer all bytes", Uint8Array.from({ length: 256 }, (_, i) => i).buffer);
v("Int8Array", new Int8Array([-128, -1, 0, 1, 127]));
v("Uint8Array", bytes(1, 2, 3));
v("Uint8Array subarray", new Uint8Array(buf16, 3, 5));
v("Uint8ClampedArray", new Uint8ClampedArray([0, 255, 300, -5]));
v("Int16Array", new Int16Array([-32768, -1, 0, 1, 32767]));
v("Int16Array over offset", new Int16Array(buf16, 4, 3));
v("Uint16Array", new Uint16Array([0, 1, 65535]));
v("Int32Array", new Int32Array([-(2 ** 31), -1, 0, 2 ** 31 - 1]));
v("Uint32Array", new Uint32Array([0, 2 ** 32 - 1]));
v("Float32Array", new Float32Array([1.5, NaN, -Infinity, -0]));
v("Float64Array", new Float64Array([Math.PI, -0, Infinity]));
v("BigInt64Array", new BigInt64Array([1n, -1n, -(2n ** 63n)]));
v("BigUint64Array", new BigUint64Array([0n, 2n ** 64n - 1n]));
v("DataView over a slice", new DataView(buf16, 2, 3));
v("DataView empty", new DataView(new ArrayBuffer(0)));
v("binary in object", { u: { $t: "user data" }, y: bytes(0xff, 0xfe) });

// Blob / File (see the XMLHttpRequest stand-in above)
v("Blob", new Blob([bytes(0, 1, 0x80, 0xff), "hi"], { type: "application/octet-stream" }));
v("Blob empty type", new Blob(["hello"]));
v("Blob empty", new Blob([], { type: "text/plain" }));
v("FakeBlob", new FakeBlob(bytes(1, 2, 3).buffer, "image/png"));
v("File", new File(["hello file"], "a.txt", { type: "text/plain", lastModified: 1718000000123 }));
v("File in object", {
  att: new File([bytes(255, 254, 253)], "ü $t.bin", { type: "", lastModified: 0 }),
});

// Map / Set
v("Map", new Map([["a", 1], [2, new Date(0)], [{ k: 1 }, [1, 2]]]));
v("Map empty", new Map());
v("Set", new Set(["a", 1, null, { $x: 1 }]));
v("Set empty", new Set());
v("Map in Set", new Set([new Map([["x", new Set([NaN])]])]));
v("Set in Map with binary key", new Map([[bytes(9), new Set([bytes(1)])]]));

// Dollar keys
v("dollar keys", { $t: "x", $: 1, $$x: 2, $ts: 3, a$: 4, "": 5, plain: 6 });
v("looks typed but plain", { $t: "Date", v: "2024-01-01T00:00:00.000Z" });
v("looks undefined but plain", { $t: "undefined" });
v("dollar keys nested", { $jobs: { $$deep: [{ $t: 1 }] } });
v("dollar keys inside Map key", new Map([[{ $k: 1 }, { $v: 2 }]]));

// Strings
v("unicode", {
  latin: "åäö ÅÄÖ ß",
  cjk: "日本語",
  astral: "😀 𝄞 🇸🇪",
  controls: "\u0000\u0001\b\f\n\r\t\u001f\u007f",
  quotes: "\"\\/",
  separators: "\u2028\u2029",
  "клю😀ч": "astral key",
});
v("lone surrogates", ["\ud800", "a\udfffb", "\ud83d"]);

// PropModification (Dexie)
v("PropModification add number", { "meta.count": add(1) });
v("PropModification add array", { tags: add(["a", "b"]) });
v("PropModification remove number", { n: remove(3) });
v("PropModification remove array", { tags: remove(["x"]) });
v("PropModification replacePrefix", { path: replacePrefix("foo/", "bar/") });
v("PropModification add Date array", { d: add([new Date(0)]) });

// Things the client serialises as plain objects or drops
class Thing {
  constructor() {
    this.a = 1;
    this.$b = 2;
  }
}
v("class instance", new Thing());
v("RegExp and function", { re: /x/g, fn() {}, keep: 1 });

// Protocol-shaped bodies (spec Appendix A/B)
v("sync request", {
  v: 3,
  dbID: undefined,
  clientIdentity: "q83vEjRWeJq83vEjRWeJqw==",
  schema: { todoItems: { markedForSync: true }, $jobs: { markedForSync: undefined } },
  lastPull: { serverRevision: "2823", yServerRevision: undefined, realms: ["rlm-public"], inviteRealms: [] },
  baseRevs: [{ tableName: "todoItems", clientRev: 1, serverRev: "2823" }],
  changes: [{
    table: "todoItems",
    muts: [
      { type: "insert", ts: 1718000000000, opNo: 1, keys: ["tdi1"], txid: "t1", userId: "usr1",
        values: [{ id: "tdi1", title: "Buy milk", due: new Date("2024-06-10T00:00:00.000Z"), $ts: 1 }], rev: 1 },
      { type: "update", ts: 1718000000100, opNo: 2, keys: ["tdi1"], txid: "t1", userId: "usr1",
        changeSpecs: [{ done: true, "meta.count": add(1), oldProp: undefined }], rev: 2 },
      { type: "delete", ts: 1718000000300, opNo: 3, keys: ["tdi2"], criteria: undefined, txid: "t2",
        userId: "usr1", rev: 3 },
      { type: "modify", ts: 1718000000400, opNo: 4, keys: [], txid: "t3", userId: "usr1", rev: 4,
        criteria: { index: null, range: { type: 2, lower: -Infinity, lowerOpen: false, upper: undefined, upperOpen: false } },
        changeSpec: { path: replacePrefix("foo/", "bar/") } },
    ],
  }],
  y: [{ type: "u-c", table: "docs", prop: "content", k: "doc0abc", u: bytes(1, 2, 3), i: 7 }],
  dxcv: "4.4.14",
});
v("sync response", {
  serverRevision: "2824",
  dbId: "db7x1",
  realms: ["rlm-public", "usr1"],
  inviteRealms: [],
  schema: { todoItems: { generatedGlobalId: true, idPrefix: "tdi", markedForSync: true } },
  changes: [{ table: "settings", muts: [{ type: "upsert", keys: ["#prefs:usr1"],
    values: [{ id: "#prefs:usr1", theme: "dark", $ts: 1718000000000, note: undefined }] }] }],
  rejections: [],
  yMessages: [{ type: "y-complete-sync-done", yServerRev: "2824" }],
});

// Hand-written wire text the client may receive (not stringify output)
hand("unknown $t kept", '{"$t":"foo","$$x":1,"y":{"$t":"Date","v":"2020-01-01T00:00:00.000Z"}}');
hand("unknown $t nested", '{"a":[{"$t":"Thing","v":[1,{"$t":"number","v":"NaN"}]}]}');
hand("bigint is unknown to the client", '{"n":{"$t":"bigint","v":"12"}}');
hand("non-string $t", '{"$t":5,"a":1}');
hand("empty $t", '{"$t":"","b":2}');
hand("Date without milliseconds", '{"$t":"Date","v":"2024-01-02T03:04:05Z"}');
// The client's encoder only types NaN and ±Infinity; dxc.tson rejects the rest.
hand("number typed non-special", '{"$t":"number","v":"12"}', { dxc_error: true });
hand("Int16Array with odd byte length", '{"$t":"Int16Array","v":"0G83"}');
hand("Uint8Array without v", '{"$t":"Uint8Array"}');
hand("typed value without padding", '{"$t":"Uint8Array","v":"0G8"}', {
  expect: '{"$t":"Uint8Array","v":"0G8-"}',
});

// --- Run it through the client's parse as well -----------------------------
// epoch_ms: getTime() of a revived Date (or of each Date in a revived array), null for NaN.
const epoch = (d) => (d instanceof Date ? (isNaN(d.getTime()) ? null : d.getTime()) : undefined);
function clientRoundTrip(tson) {
  try {
    const value = TSON.parse(tson);
    const ms = Array.isArray(value) && value.every((d) => d instanceof Date)
      ? value.map(epoch)
      : epoch(value);
    return { js_reencoded: TSON.stringify(value), ...(ms === undefined ? {} : { epoch_ms: ms }) };
  } catch (e) {
    return { js_parse_error: `${e.name}: ${e.message}` };
  }
}
const out = vectors.map((vec) => {
  const res = { ...vec, ...clientRoundTrip(vec.tson) };
  if (vec.expect !== undefined) {
    const { js_reencoded, js_parse_error } = clientRoundTrip(vec.expect);
    res.expect_js_reencoded = js_reencoded ?? js_parse_error;
  }
  return res;
});

const target = fileURLToPath(new URL("../unit/tson_vectors.json", import.meta.url));
writeFileSync(target, `[\n${out.map((o) => JSON.stringify(o)).join(",\n")}\n]\n`);
console.log(`wrote ${out.length} vectors to ${target}`);
