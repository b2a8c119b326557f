// tier: fast
/**
 * The LAN endpoint's defences, against the endpoint in this process (a stub backend, a real portal socket where the
 * portal matters): bounded connections per IP and in total, HTTP/1.x only, oversized bodies answered (not reset),
 * IP → MAC from shared reads queued behind gate commands, an IP two clients share refused, and `listen` on every
 * interface refused by the config loader.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { SluiceBackend } from '../../src/api/index.ts';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { HttpEndpoint } from '../../src/http/server.ts';
import { portalClientDirectory } from '../../src/gate/mac-resolver.ts';
import { ClientDirectory } from '../../src/gate/client-directory.ts';
import { totalConnectionBound, openFileLimit } from '../../src/listener/connection-limits.ts';
import { PortalModel } from '../../src/sim/index.ts';
import { recordedPortalSocket } from '../helpers/portal-socket.ts';

const test = suite('LAN endpoint limits');
const MAC = '02:00:00:00:0e:01';
const OTHER = '02:00:00:00:0e:02';

interface Calls {
  purchases: number;
}

function stubBackend(calls: Calls = { purchases: 0 }): SluiceBackend {
  return {
    now: () => Date.now(),
    pricing: () => [],
    session: () => undefined,
    purchase: async () => {
      calls.purchases++;
      throw new Error('not in this test');
    },
  } as unknown as SluiceBackend;
}

async function start(
  o: {
    macOf?: (ip: string) => Promise<string | null>;
    maxConnections?: number;
    maxConnectionsPerIp?: number;
    backend?: SluiceBackend;
  } = {},
): Promise<HttpEndpoint> {
  return HttpEndpoint.start({
    host: '127.0.0.1',
    port: 0,
    rateLimitPerMinute: 10_000,
    backend: o.backend ?? stubBackend(),
    forms: { voucher: true },
    macOf: o.macOf ?? (async () => MAC),
    ...(o.maxConnections !== undefined && { maxConnections: o.maxConnections }),
    ...(o.maxConnectionsPerIp !== undefined && { maxConnectionsPerIp: o.maxConnectionsPerIp }),
  });
}

function get(port: number, path: string, o: { localAddress?: string; method?: string; body?: string } = {}) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: o.method ?? 'GET',
        agent: false,
        ...(o.localAddress && { localAddress: o.localAddress }),
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A raw connection: resolves when it is established, records whether (and when) the server closed it. */
async function open(
  port: number,
  localAddress = '127.0.0.1',
): Promise<{ socket: Socket; closed: Promise<void>; isClosed: () => boolean; text: () => string }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  let text = '';
  let closed = false;
  socket.on('data', (d) => (text += d));
  socket.on('error', () => undefined);
  const closedP = new Promise<void>((r) =>
    socket.once('close', () => {
      closed = true;
      r();
    }),
  );
  await new Promise<void>((r, j) => {
    socket.once('connect', () => r());
    socket.once('error', j);
  });
  return { socket, closed: closedP, isClosed: () => closed, text: () => text };
}

test('connections past the per-IP and the total bound are closed; a fresh client is served once they go', async () => {
  const endpoint = await start({ maxConnections: 5, maxConnectionsPerIp: 2 });
  try {
    const port = endpoint.port;
    // Three from one IP: the third is closed at once.
    const a = [await open(port, '127.0.0.1'), await open(port, '127.0.0.1'), await open(port, '127.0.0.1')];
    await a[2]!.closed;
    assert.is(a.filter((c) => c.isClosed()).length, 1, 'one of three from 127.0.0.1 closed');
    assert.ok(a[2]!.isClosed(), 'the one past the bound');
    // Two more IPs with two each: 2 + 4 = 6 > 5, so one of them is closed.
    const b = [
      await open(port, '127.0.0.2'),
      await open(port, '127.0.0.2'),
      await open(port, '127.0.0.3'),
      await open(port, '127.0.0.3'),
    ];
    await Promise.race(b.map((c) => c.closed));
    assert.is(b.filter((c) => c.isClosed()).length, 1, 'one past the total closed');
    // The held connections still work: a request on one of them is answered.
    a[0]!.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise<void>((r) => a[0]!.socket.once('data', () => r()));
    assert.match(a[0]!.text(), /^HTTP\/1\.1 200/);
    // While the bound is full, a new client is turned away...
    const refused = await open(port, '127.0.0.4');
    await refused.closed;
    // ...and once the held connections go, it is served.
    for (const c of [...a, ...b]) c.socket.destroy();
    await Promise.all([...a, ...b].map((c) => c.closed));
    let answer: { status: number } | undefined;
    // The server hears of the closes after the client does: a refusal in between is the bound still counting them.
    while (answer === undefined) answer = await get(port, '/', { localAddress: '127.0.0.4' }).catch(() => undefined);
    assert.is(answer.status, 200);
  } finally {
    await endpoint.close();
  }
});

test('the total bound is a quarter of the descriptor limit, at most 256', () => {
  assert.is(totalConnectionBound(1024), 256);
  assert.is(totalConnectionBound(200), 50);
  assert.is(totalConnectionBound(65536), 256);
  assert.is(totalConnectionBound(null), 256);
  assert.is(totalConnectionBound(2), 1);
  assert.is(
    openFileLimit(
      () =>
        'Limit                     Soft Limit           Hard Limit           Units     \nMax open files        ' +
        '    1024                 4096                 files     \n',
    ),
    1024,
  );
  assert.is(
    openFileLimit(() => 'nothing'),
    null,
  );
  assert.is(
    openFileLimit(() => {
      throw new Error('no /proc');
    }),
    null,
  );
});

test(
  'a request without an HTTP version (HTTP/0.9) or with ' + 'HTTP/2.0 is refused with 400 and the connection closed',
  async () => {
    const endpoint = await start();
    try {
      for (const line of ['GET /\r\n\r\n', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n']) {
        const c = await open(endpoint.port);
        c.socket.write(line);
        await c.closed;
        assert.match(c.text(), /^HTTP\/1\.1 400 /, JSON.stringify(line));
        assert.match(c.text(), /ERR_HTTP_VERSION/);
      }
      assert.is((await get(endpoint.port, '/')).status, 200, 'HTTP/1.1 still served');
    } finally {
      await endpoint.close();
    }
  },
);

test(
  'an oversized body sent slowly is answered 413, not reset; one far past the drain bound is answered, then ' +
    'closed',
  async () => {
    const endpoint = await start();
    try {
      // Chunked, in pieces: each piece is written only after the previous one left, like a slow uplink.
      const c = await open(endpoint.port);
      const write = (s: string) => new Promise<void>((r, j) => c.socket.write(s, (err) => (err ? j(err) : r())));
      await write(
        'POST /voucher HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      );
      const piece = `{"code":"${'a'.repeat(700)}`;
      for (let i = 0; i < 4 && !c.isClosed(); i++)
        await write(`${piece.length.toString(16)}\r\n${piece}\r\n`).catch(() => undefined);
      await write('0\r\n\r\n').catch(() => undefined);
      // The answer, or (what a reset looks like here) the connection closed without one.
      await Promise.race([new Promise<void>((r) => c.socket.once('data', () => r())), c.closed]);
      assert.match(c.text(), /^HTTP\/1\.1 413 /);
      assert.match(c.text(), /ERR_VOUCHER_REQUEST_INVALID/);
      c.socket.destroy();

      // A declared length over the bound: read and dropped, answered 413.
      const r = await get(endpoint.port, '/receipt', { method: 'POST', body: 'x'.repeat(5000) });
      assert.is(r.status, 413);
      assert.is((r.body.error as Record<string, unknown>).code, 'ERR_RECEIPT_INVALID');

      // Far past the drain bound: the answer comes once the bound is read, and the connection closes after it.
      const big = await open(endpoint.port);
      big.socket.write('POST /voucher HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
      big.socket.write('x'.repeat(80 * 1024));
      await big.closed;
      assert.match(big.text(), /^HTTP\/1\.1 413 /);
      assert.match(big.text(), /connection: close/i);
    } finally {
      await endpoint.close();
    }
  },
);

test(
  'two portal clients on one IP: the purchase is refused ' + 'with ERR_HTTP_CLIENT_AMBIGUOUS (409), nothing bought',
  async () => {
    const calls = { purchases: 0 };
    const directory = new ClientDirectory({
      read: async () => [
        { mac: MAC, ip: '127.0.0.1' },
        { mac: OTHER, ip: '127.0.0.1' },
        { mac: '02:00:00:00:0e:03', ip: '127.0.0.5' },
      ],
    });
    const endpoint = await start({ macOf: (ip) => directory.macOf(ip), backend: stubBackend(calls) });
    try {
      const r = await get(endpoint.port, '/voucher', { method: 'POST', body: JSON.stringify({ code: 'abc' }) });
      assert.is(r.status, 409);
      const error = r.body.error as Record<string, unknown>;
      assert.is(error.code, 'ERR_HTTP_CLIENT_AMBIGUOUS');
      assert.match(
        String(error.message),
        /more than one device on this WiFi has your address \(127\.0\.0\.1\).*reconnect to the WiFi/,
      );
      assert.is(calls.purchases, 0, 'no purchase attempted');
      assert.is((await get(endpoint.port, '/session')).status, 409);
      // The same MAC listed twice with one IP is one client, not two.
      const twice = new ClientDirectory({
        read: async () => [
          { mac: MAC, ip: '10.0.0.9' },
          { mac: MAC, ip: '10.0.0.9' },
        ],
      });
      assert.is(await twice.macOf('10.0.0.9'), MAC);
      assert.is(await twice.macOf('10.0.0.10'), null);
    } finally {
      await endpoint.close();
    }
  },
);

test('N concurrent LAN requests cause one portal read, queued behind the gate opens that came after them', async () => {
  const model = new PortalModel({ flavour: 'opennds' });
  model.addClient(MAC, '127.0.0.1');
  model.addClient(OTHER, '127.0.0.2');
  const recorded = await recordedPortalSocket(model);
  const { calls, valve } = recorded;
  const directory = portalClientDirectory(valve);
  let waiting = 0;
  // More connections from one IP than the default bound allows: these requests are all one client's.
  const endpoint = await start({
    macOf: (ip) => {
      waiting++;
      return directory.macOf(ip);
    },
    maxConnectionsPerIp: 64,
  });
  // Something holds the portal queue (a tick's snapshot), so the lookups and the open are queued together.
  let release!: () => void;
  const held = valve.runExclusive(
    () =>
      new Promise<void>((r) => {
        release = r;
      }),
    'snapshot',
  );
  try {
    const N = 20;
    const requests = Array.from({ length: N }, () => get(endpoint.port, '/session'));
    while (waiting < N) await new Promise((r) => setImmediate(r));
    // Two gate opens after the lookup: the lookup, jumped by the first, must not rank like it and hold up the second.
    const opened = [valve.open(MAC), valve.open(OTHER)];
    release();
    await held;
    const answers = await Promise.all(requests);
    assert.equal(await Promise.all(opened), ['opened', 'opened']);
    assert.ok(
      answers.every(
        (a) => a.status === 404 && (a.body.error as Record<string, unknown>).code === 'ERR_SESSION_NOT_FOUND',
      ),
      'each found its MAC (no session)',
    );
    assert.is(calls.filter((c) => c === 'json').length, 1, `one list read for ${N} requests: ${JSON.stringify(calls)}`);
    const auths = calls.flatMap((c, i) => (c.startsWith('auth ') ? [i] : []));
    assert.is(auths.length, 2);
    assert.ok(
      auths.every((i) => i < calls.indexOf('json')),
      `both auths before the lookup: ${JSON.stringify(calls)}`,
    );
    assert.is(directory.reads, 1);
  } finally {
    await endpoint.close();
    await recorded.close();
  }
});

test(
  'config: http.listen on every interface (0.0.0.0, ::, and their other spellings) is a problem; the LAN address ' +
    'is fine',
  () => {
    const PLAN = `config pricing 'p'\n\toption price_per_step '5'\n`;
    const listen = (v: string) =>
      configFromUciPartial(parseUci(`${PLAN}config http 'http'\n\toption listen '${v}'\n`), { hostname: 'r' });
    for (const v of ['0.0.0.0:2122', '[::]:2122', '[0:0::0]:2122', '0:2122', '[::ffff:0.0.0.0]:2122']) {
      const { config, problems } = listen(v);
      const p = problems.find((x) => x.path === 'http.listen');
      assert.ok(p, `${v} refused`);
      assert.match(p!.reason, /LAN address/);
      assert.is(config.http.host, '', `${v}: the endpoint stays off`);
    }
    for (const v of ['192.168.1.1:2122', '[fd00::1]:2122']) {
      const { config, problems } = listen(v);
      assert.is(problems.filter((x) => x.path === 'http.listen').length, 0, v);
      assert.is(config.http.port, 2122);
    }
  },
);

test.run();
