// The lab's upstream: a tiny HTTP server in the upstream namespace serving bounded generated files, counting per
// client IP what it sent and — the figure the e2e tests compare sluice's meter with — what the client's TCP
// acknowledged. "Sent" (handed to the kernel) runs ahead of what passed the gate by the socket buffer and the
// shaper's queue; "acked" is what really reached the client. Live connections are read with `ss -ti` (bytes_acked).
//
//   GET /bytes/<n>   n bytes (n <= 64 MiB) of a fixed pseudo-random pattern; also /1MiB /5MiB /20MiB
//   GET /ping        "ok\n"
//   POST /upload     reads the body, answers its length
//   GET /__stats     (from 127.0.0.1 only) {"clients":{"<ip>":{"requests","sent","acked","open"}}}
import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const args = process.argv.slice(2);
const port = Number(args[args.indexOf('--port') + 1] || 80);
const MAX_BYTES = 64 * 1024 * 1024;
// A stalled connection (the gate closed under it) is dropped after this long; its acked figure is kept.
const IDLE_MS = 8000;
const CHUNK = randomBytes(64 * 1024);
const NAMED = { '/1MiB': 1 << 20, '/5MiB': 5 << 20, '/20MiB': 20 << 20 };

/** per client IP: finished connections' totals */
const done = new Map();
/** live sockets: key "ip:port" -> { ip, socket, acked } */
const live = new Map();

const ipOf = (socket) => (socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
const sentOf = (socket) => Math.max(0, socket.bytesWritten - socket.writableLength);

function totals(ip) {
  let t = done.get(ip);
  if (!t) done.set(ip, (t = { requests: 0, sent: 0, acked: 0 }));
  return t;
}

/** Reads bytes_acked of every TCP connection on our port, keyed "ip:port" of the peer. */
function readAcked() {
  return new Promise((resolve) => {
    execFile('ss', ['-tinH', 'state', 'all', 'sport', '=', `:${port}`], { timeout: 2000 }, (err, stdout) => {
      const out = new Map();
      if (err) return resolve(out);
      let peer = null;
      for (const line of stdout.split('\n')) {
        const cols = line.trim().split(/\s+/);
        if (!/^\s/.test(line) && cols.length >= 4) {
          peer = cols[cols.length - 1].replace(/^\[?::ffff:/, '').replace(/\]/, '');
          continue;
        }
        const m = /bytes_acked:(\d+)/.exec(line);
        if (peer && m) out.set(peer, Number(m[1]));
      }
      resolve(out);
    });
  });
}

async function refreshAcked() {
  const acked = await readAcked();
  for (const [key, conn] of live) {
    const a = acked.get(key);
    // bytes_acked counts the SYN's sequence number too; cap at what was sent.
    if (a !== undefined) conn.acked = Math.min(sentOf(conn.socket), Math.max(conn.acked, a - 1));
  }
}
setInterval(refreshAcked, 200).unref();

/** Each system's probe path and its internet's answer: Android, Apple, Windows, Firefox. */
const PROBES = {
  '/generate_204': { status: 204, body: '' },
  '/hotspot-detect.html': { status: 200, body: '<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>' },
  '/connecttest.txt': { status: 200, body: 'Microsoft Connect Test' },
  '/canonical.html': {
    status: 200,
    body: '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>',
  },
};

const server = createServer((req, res) => {
  const ip = ipOf(req.socket);
  if (req.url === '/__stats') {
    if (ip !== '127.0.0.1') {
      res.writeHead(403).end();
      return;
    }
    refreshAcked().then(() => {
      const clients = {};
      for (const [k, t] of done) clients[k] = { ...t, open: 0 };
      for (const conn of live.values()) {
        if (conn.ip === '127.0.0.1') continue;
        const c = (clients[conn.ip] ??= { requests: 0, sent: 0, acked: 0, open: 0 });
        c.sent += sentOf(conn.socket);
        c.acked += conn.acked;
        c.open += 1;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ clients }));
    });
    return;
  }
  if (ip !== '127.0.0.1') totals(ip).requests += 1;
  if (req.url === '/ping') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  // The systems' captive-portal probes, answered as their own servers answer them (the lab's dnsmasq names them here).
  const probe = PROBES[req.url ?? ''];
  if (probe !== undefined) {
    res.writeHead(probe.status, { 'content-type': 'text/html' }).end(probe.body);
    return;
  }
  // An upload sink (rates.test.ts): reads the body, answers its length once all of it arrived.
  if (req.url === '/upload' && req.method === 'POST') {
    let n = 0;
    req.on('data', (b) => {
      n += b.length;
    });
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${n}\n`));
    return;
  }
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  const size = m ? Number(m[1]) : NAMED[req.url ?? ''];
  if (size === undefined || !Number.isSafeInteger(size) || size > MAX_BYTES) {
    res.writeHead(404).end();
    return;
  }
  const conn = live.get(`${ip}:${req.socket.remotePort}`);
  if (conn) {
    conn.inProgress += 1;
    res.once('close', () => {
      conn.inProgress -= 1;
    });
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
  let left = size;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});

server.on('connection', (socket) => {
  const ip = ipOf(socket);
  const key = `${ip}:${socket.remotePort}`;
  const conn = { ip, socket, acked: 0, clean: false, inProgress: 0 };
  live.set(key, conn);
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  // A client FIN with no response in progress comes after the client acknowledged everything it was sent.
  socket.on('end', () => {
    conn.clean = conn.inProgress === 0 && socket.writableLength === 0;
  });
  socket.on('close', () => {
    live.delete(key);
    if (ip === '127.0.0.1') return;
    const t = totals(ip);
    const sent = sentOf(socket);
    t.sent += sent;
    t.acked += conn.clean ? sent : conn.acked;
  });
});
server.keepAliveTimeout = 2000;
server.listen(port, '0.0.0.0', () => process.stdout.write(`upstream listening on :${port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
