// tier: fast
/**
 * GET /captive, the RFC 8908 captive portal API, against the endpoint in this process with a stub backend: the media
 * type, captive for a client without an ACTIVE session (or one the portal does not list), what is left once it has
 * one, and the http.portal_url / venue_url options that fill the URLs.
 */
import { request } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { SluiceBackend } from '../../src/api/index.ts';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { HttpEndpoint } from '../../src/http/server.ts';
import { SessionManager, type Session } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';

const test = suite('RFC 8908 captive portal API');
const MAC = '02:00:00:00:0c:31';
const NOW = Date.parse('2026-05-01T12:00:00Z');

function session(o: Partial<Session>): Session {
  return {
    id: 'abcdef0123456789',
    mac: MAC,
    ip: '127.0.0.1',
    user: null,
    plan: 'data',
    metric: 'bytes',
    allotment: 10_000n,
    used: 2500,
    bytes: 2500,
    createdAt: NOW - 60_000,
    startedAt: NOW - 60_000,
    expiresAt: null,
    endedAt: null,
    state: 'ACTIVE',
    endCause: null,
    payments: [],
    ...o,
  };
}

async function withEndpoint(
  s: Session | undefined,
  o: { captive?: { portalUrl: string; venueUrl: string }; vouchers?: boolean; known?: boolean },
  fn: (port: number) => Promise<void>,
) {
  const backend = { now: () => NOW, pricing: () => [], session: () => s } as unknown as SluiceBackend;
  const endpoint = await HttpEndpoint.start({
    host: '127.0.0.1',
    port: 0,
    rateLimitPerMinute: 100,
    backend,
    forms: { voucher: o.vouchers ?? true },
    macOf: async () => (o.known === false ? null : MAC),
    ...(o.captive && { captive: o.captive }),
  });
  try {
    await fn(endpoint.port);
  } finally {
    await endpoint.close();
  }
}

function get(port: number, path = '/captive') {
  return new Promise<{ status: number; type: string; body: Record<string, unknown> }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: JSON.parse(text) }),
      );
    })
      .on('error', reject)
      .end();
  });
}

test('a client the portal does not list, or without a session: captive, with the pay page to go to', async () => {
  await withEndpoint(undefined, { known: false }, async (port) => {
    const r = await get(port);
    assert.is(r.status, 200);
    assert.is(r.type, 'application/captive+json');
    assert.equal(r.body, { captive: true, 'user-portal-url': `http://127.0.0.1:${port}/portal` });
  });
  await withEndpoint(session({ state: 'EXPIRED', endedAt: NOW - 1000, endCause: 'data-limit' }), {}, async (port) => {
    assert.is((await get(port)).body.captive, true, 'an ended session does not free the client');
  });
});

test('an ACTIVE data session: not captive, bytes left, extendable; a time session: seconds left', async () => {
  const captive = { portalUrl: 'https://wifi.example.net/portal', venueUrl: 'https://cafe.example.net/' };
  await withEndpoint(session({}), { captive }, async (port) => {
    assert.equal((await get(port)).body, {
      captive: false,
      'user-portal-url': captive.portalUrl,
      'venue-info-url': captive.venueUrl,
      'can-extend-session': true,
      'bytes-remaining': 7500,
    });
  });
  await withEndpoint(
    session({ metric: 'seconds', allotment: 3600n, used: 0, expiresAt: NOW + 90_500 }),
    { vouchers: false },
    async (port) => {
      const body = (await get(port)).body;
      assert.is(body.captive, false);
      assert.is(body['seconds-remaining'], 90, 'whole seconds left, rounded down');
      assert.is(body['bytes-remaining'], undefined);
      assert.is(body['can-extend-session'], false, 'nothing is sold here: the page cannot extend it');
    },
  );
});

test(
  'seconds-remaining never exceeds what was sold: a 600 s grant asked right after its gate opened says 600, not ' +
    '601',
  async () => {
    // The real path: a 600 s time session whose clock starts when its gate opens 250 ms after the sale; the deadline is
    // that opening rounded up to a whole second (SessionManager.startClock), so 600.75 s are left at the opening.
    let t = NOW + 1;
    const manager = await SessionManager.open({ store: new MemoryStore(), clock: { now: () => t } });
    try {
      const { session: sold } = await manager.activate({
        mac: MAC,
        metric: 'seconds',
        allotment: 600n,
        payment: { method: 'admin', reference: 'grant-1', amount: 0n, asset: '', at: t },
      });
      t += 250;
      await manager.startClock(sold.id, t);
      const s = manager.get(sold.id)!;
      assert.ok(
        s.expiresAt! - t > 600_000,
        `the deadline is past opening + 600 s (${s.expiresAt! - t} ms): the case that read 601`,
      );
      const backend = {
        now: () => t,
        pricing: () => [],
        session: () => manager.get(sold.id),
      } as unknown as SluiceBackend;
      const endpoint = await HttpEndpoint.start({
        host: '127.0.0.1',
        port: 0,
        rateLimitPerMinute: 100,
        backend,
        forms: { voucher: true },
        macOf: async () => MAC,
      });
      try {
        assert.is((await get(endpoint.port)).body['seconds-remaining'], 600);
        t += 999;
        assert.is((await get(endpoint.port)).body['seconds-remaining'], 599, 'rounded down as the seconds pass');
      } finally {
        await endpoint.close();
      }
    } finally {
      await manager.close();
    }
  },
);

test('http.portal_url and venue_url: http(s) URLs or empty; anything else is a problem naming the option', () => {
  const PLAN = "config pricing 'data'\n\toption metric 'bytes'\n\toption step_size '1'\n\toption price_per_step '1'\n";
  const read = (extra: string) =>
    configFromUciPartial(parseUci(`${PLAN}config http 'http'\n\toption listen '192.168.1.1:2122'\n${extra}`), {
      hostname: 'r',
    });
  const good = read(
    "\toption portal_url 'https://wifi.example.net/portal'\n\toption venue_url 'http://cafe.example.net/'\n",
  );
  assert.is(good.config.http.portalUrl, 'https://wifi.example.net/portal');
  assert.is(good.config.http.venueUrl, 'http://cafe.example.net/');
  assert.is(read('').config.http.portalUrl, '');
  for (const [option, value] of [
    ['portal_url', 'ftp://x/portal'],
    ['venue_url', 'not a url'],
    ['portal_url', `https://x/${'a'.repeat(600)}`],
  ] as const) {
    const { problems } = read(`\toption ${option} '${value}'\n`);
    assert.ok(
      problems.some((p) => p.path === `http.${option}`),
      `${option} ${value.slice(0, 20)}`,
    );
  }
});

test.run();
