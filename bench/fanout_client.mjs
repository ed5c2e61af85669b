// The fan-out's clients for bench/live.py --node-clients: many /changes sockets in one
// Node process, with the `ws` package the addon uses in Node (pinned in tests/e2e).
//
// Reads one JSON line on stdin: {urls: [...], rev, realmSetHash, fanouts, deflate}.
// Opens every socket, answers the server's first message with `ready` as the addon does,
// and prints {"open": n} once all are open. Then, for each fan-out, once every socket got
// its `changes`, prints {"fanout": k, "read": [...], "handled": [...]}: per socket, when
// the message event fired and when its `ready` was sent (epoch milliseconds, the clock
// Python's time.time() reads). Closes the sockets and exits when stdin closes.
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../tests/e2e/package.json", import.meta.url));
const WebSocket = require("ws");

const now = () => performance.timeOrigin + performance.now();
const lines = createInterface({ input: process.stdin });
const config = JSON.parse(await new Promise((resolve) => lines.once("line", resolve)));

const sockets = config.urls.map((url) => ({ url, rev: config.rev, read: [], handled: [] }));
let reported = 0;

function report() {
  while (reported < config.fanouts && sockets.every((s) => s.handled.length > reported)) {
    console.log(JSON.stringify({
      fanout: reported,
      read: sockets.map((s) => s.read[reported]),
      handled: sockets.map((s) => s.handled[reported]),
    }));
    reported += 1;
  }
}

function ready(s) {
  s.ws.send(JSON.stringify({ type: "ready", rev: s.rev, realmSetHash: config.realmSetHash }));
}

function open(s) {
  return new Promise((resolve, reject) => {
    s.ws = new WebSocket(s.url, { perMessageDeflate: Boolean(config.deflate) });
    s.ws.once("open", () => {
      ready(s);
      resolve();
    });
    s.ws.once("error", reject);
    s.ws.on("message", (data) => {
      const at = now();
      const message = JSON.parse(data.toString());
      if (message.type !== "changes" || message.baseRev !== s.rev) return;
      s.rev = message.newRev;
      ready(s);
      s.read.push(at);
      s.handled.push(now());
      report();
    });
  });
}

for (let start = 0; start < sockets.length; start += 50) {
  await Promise.all(sockets.slice(start, start + 50).map(open));
}
console.log(JSON.stringify({ open: sockets.length }));
lines.on("close", () => {
  for (const s of sockets) s.ws.terminate();
  process.exit(0);
});
