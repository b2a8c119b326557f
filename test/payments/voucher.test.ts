// tier: peers; needs freeradius
// The voucher method against a real FreeRADIUS (test/peers/freeradius.ts): accept (time, data, > 4 GiB), reject with
// its Reply-Message, a tampered Access-Accept refused, failover past a dead server, a silent server.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket, type Socket } from 'node:dgram';
import { FreeRadius } from '../peers/freeradius.ts';
import { freePort } from '../helpers/net.ts';
import { RadiusClient, type RadiusServer } from '../../src/radius/client.ts';
import { VoucherMethod, type VoucherTerms } from '../../src/payments/voucher/voucher.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import { rejectsWithCode } from '../helpers/assert.ts';

const t = suite<{ radius: FreeRadius; clients: RadiusClient[] }>('voucher', {
  radius: undefined as never,
  clients: [],
});
const NAS = () => ({ identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' });

function ctx(code: string, password?: string, mac = '02:00:00:00:0a:01'): PaymentContext {
  return {
    now: Date.now(),
    quote: {
      plan: 'p',
      metric: 'seconds',
      steps: 1n,
      allotment: 60n,
      price: 0n,
      asset: '',
      currency: 'USDC',
      decimals: 6,
      stepSize: 60n,
      pricePerStep: 0n,
    },
    request: { mac, payment: { method: 'voucher', code, ...(password !== undefined && { password }) } },
  };
}

function method(
  c: { clients: RadiusClient[] },
  servers: RadiusServer[],
  accepted?: Array<[string, VoucherTerms]>,
): VoucherMethod {
  const client = new RadiusClient({ servers, timeoutMs: 200, retries: 1, deadTimeMs: 60_000 });
  c.clients.push(client);
  return new VoucherMethod({ client, nas: NAS, onAccepted: (ref, terms) => accepted?.push([ref, terms]) });
}

t.before(async (c) => {
  c.radius = await FreeRadius.start();
});
t.after(async (c) => {
  for (const client of c.clients) await client.close();
  await c.radius?.close();
});

t(
  'time voucher: Session-Timeout + byte limit → data session with a hard deadline; Interim interval and user kept',
  async (c) => {
    const accepted: Array<[string, VoucherTerms]> = [];
    const m = method(c, [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }], accepted);
    const before = Date.now();
    const ref = await m.authorize(ctx('testuser', 'testpass'));
    assert.is(ref.method, 'voucher');
    assert.is(ref.terms.metric, 'bytes');
    assert.is(ref.terms.allotment, 104857600n);
    assert.ok(ref.terms.expiresAt! >= before + 3600_000 && ref.terms.expiresAt! <= Date.now() + 3600_000);
    assert.is(ref.terms.user, 'testuser');
    assert.is(ref.terms.interimIntervalS, 60);
    assert.is(ref.terms.replyMessage, 'Welcome');
    assert.equal(
      accepted.map(([r]) => r),
      [ref.reference],
    );
    assert.match(ref.reference, /^testuser\/[0-9a-f]{12}$/);
  },
);

t(
  'a Session-Timeout-only voucher is a time session; a byte-only voucher a data session without deadline',
  async (c) => {
    const m = method(c, [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }]);
    const time = await m.authorize(ctx('timeuser', 'timepass'));
    assert.equal(
      [time.terms.metric, time.terms.allotment, time.terms.expiresAt, time.terms.interimIntervalS],
      ['seconds', 600n, null, null],
    );
    assert.equal(
      time.terms.classes.map((b) => b.toString()),
      ['billing-42'],
      'Class kept for accounting',
    );
    const data = await m.authorize(ctx('datauser', 'datapass'));
    assert.equal([data.terms.metric, data.terms.allotment, data.terms.expiresAt], ['bytes', 52428800n, null]);
    assert.is(data.terms.interimIntervalS, 60, 'Acct-Interim-Interval below 60 s is raised to 60 (as CoovaChilli)');
  },
);

t('a > 4 GiB voucher arrives through gigawords', async (c) => {
  const m = method(c, [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }]);
  const ref = await m.authorize(ctx('biguser', 'bigpass'));
  assert.is(ref.terms.allotment, 5n * 1024n ** 3n);
  assert.is(ref.terms.interimIntervalS, 300);
});

t('reject carries the Reply-Message; a wrong password is a reject too', async (c) => {
  const m = method(c, [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }]);
  const err = await m.authorize(ctx('nosuchcode')).then(
    () => undefined,
    (e: unknown) => e as { code: string; message: string },
  );
  assert.is(err?.code, 'ERR_VOUCHER_REJECTED');
  assert.is(err?.message, 'Invalid voucher');
  await rejectsWithCode(m.authorize(ctx('testuser', 'wrong')), 'ERR_VOUCHER_REJECTED');
  assert.equal(m.stats(), { accepted: 0, rejected: 2, unavailable: 0 });
});

t('a server signing with Message-Authenticator (FreeRADIUS >= 3.2.5) is verified and accepted', async () => {
  const signing = await FreeRadius.start({ replyMessageAuthenticator: true });
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: signing.authPort, secret: signing.secret }],
    timeoutMs: 300,
    retries: 1,
  });
  try {
    const ref = await new VoucherMethod({ client, nas: NAS }).authorize(ctx('testuser', 'testpass'));
    assert.is(ref.terms.allotment, 104857600n);
  } finally {
    await client.close();
    await signing.close();
  }
});

/** A UDP relay in front of FreeRADIUS that can alter replies. */
async function relay(
  target: number,
  alter: (reply: Buffer) => Buffer,
): Promise<{ port: number; socket: Socket; altered: () => number }> {
  const front = createSocket('udp4');
  let altered = 0;
  const back = createSocket('udp4');
  let client: { address: string; port: number } | undefined;
  front.on('message', (msg, rinfo) => {
    client = rinfo;
    back.send(msg, target, '127.0.0.1');
  });
  back.on('message', (msg) => {
    if (client) {
      altered++;
      front.send(alter(msg), client.port, client.address);
    }
  });
  await new Promise<void>((r) => front.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => back.bind(0, '127.0.0.1', () => r()));
  const orig = front.close.bind(front);
  front.close = ((cb?: () => void) => {
    back.close();
    return orig(cb);
  }) as typeof front.close;
  return { port: front.address().port, socket: front, altered: () => altered };
}

t('a tampered Access-Accept is refused: no session, ERR_UPSTREAM_UNAVAILABLE after the retries', async (c) => {
  // Raise Session-Timeout's value in flight (the attacker's goal); the response authenticator no longer matches.
  const r = await relay(c.radius.authPort, (msg) => {
    const out = Buffer.from(msg);
    for (let off = 20; off + 2 <= out.length; off += out[off + 1]!) {
      if (out[off] === 27) out.writeUInt32BE(999999, off + 2);
      if (out[off + 1]! < 2) break;
    }
    out[out.length - 1]! ^= 0x01;
    return out;
  });
  try {
    const m = method(c, [{ host: '127.0.0.1', port: r.port, secret: c.radius.secret }]);
    await rejectsWithCode(m.authorize(ctx('testuser', 'testpass')), 'ERR_UPSTREAM_UNAVAILABLE');
    assert.ok(r.altered() >= 2, 'FreeRADIUS answered every attempt');
  } finally {
    r.socket.close();
  }
});

t(
  'failover: a dead first server, the live second answers; a silent server list → ERR_UPSTREAM_UNAVAILABLE',
  async (c) => {
    const dead = await freePort();
    const m = method(c, [
      { host: '127.0.0.1', port: dead, secret: c.radius.secret },
      { host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret },
    ]);
    const ref = await m.authorize(ctx('testuser', 'testpass'));
    assert.is(ref.terms.user, 'testuser');
    const client = c.clients.at(-1)!;
    assert.is(client.stats().failovers, 1);
    // The dead server is now skipped: the next request goes straight to the live one.
    await m.authorize(ctx('testuser', 'testpass'));
    assert.is(client.stats().failovers, 1);
    const silent = method(c, [{ host: '127.0.0.1', port: dead, secret: 's' }]);
    await rejectsWithCode(silent.authorize(ctx('testuser', 'testpass')), 'ERR_UPSTREAM_UNAVAILABLE');
  },
);

t('speed tiers: WISPr-Bandwidth-Max-* and Mikrotik-Rate-Limit set the rates (the smaller per direction)', async (c) => {
  const m = method(c, [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }]);
  const ref = await m.authorize(ctx('rateuser', 'ratepass'));
  // WISPr: down 8M, up 2M; MikroTik "1M/4M": rx (upload) 1M, tx (download) 4M.
  assert.equal(ref.terms.rates, { downBps: 4_000_000, upBps: 1_000_000 });
  const plain = await m.authorize(ctx('timeuser', 'timepass'));
  assert.is(plain.terms.rates, null);
});

t(
  'Mikrotik-Rate-Limit "2M" (tx left out) limits both directions, "0" neither: MikroTik\'s rule, as a CoA reads it',
  async (c) => {
    const warnings: string[] = [];
    const client = new RadiusClient({
      servers: [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }],
      timeoutMs: 200,
      retries: 1,
      deadTimeMs: 60_000,
    });
    c.clients.push(client);
    const log = {
      debug() {},
      info() {},
      warn: (_m: string, f?: Record<string, unknown>) => {
        warnings.push(String(f?.reason));
      },
      error() {},
    };
    const m = new VoucherMethod({ client, nas: NAS, log });
    const both = await m.authorize(ctx('rate2muser', 'rate2mpass'));
    assert.equal(both.terms.rates, { downBps: 2_000_000, upBps: 2_000_000 });
    const none = await m.authorize(ctx('rate0user', 'rate0pass'));
    assert.is(none.terms.rates, null, '0 is no limit: the session is not limited');
    assert.is(none.terms.allotment, 600n);
    assert.equal(warnings, [], 'neither is a problem');
  },
);

t('unusable rate attributes are ignored with a log; the voucher is still granted', async (c) => {
  const warnings: string[] = [];
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }],
    timeoutMs: 200,
    retries: 1,
    deadTimeMs: 60_000,
  });
  c.clients.push(client);
  const log = {
    debug() {},
    info() {},
    warn: (_m: string, f?: Record<string, unknown>) => {
      warnings.push(String(f?.reason));
    },
    error() {},
  };
  const m = new VoucherMethod({ client, nas: NAS, log });
  const ref = await m.authorize(ctx('badrateuser', 'badratepass'));
  assert.is(ref.terms.metric, 'seconds');
  assert.is(ref.terms.allotment, 600n);
  assert.is(ref.terms.rates, null);
  // WISPr-Bandwidth-Max-Down 0 is no limit, not a problem; WISPr-Bandwidth-Max-Up 4000 is under 8 kbit/s.
  assert.is(warnings.length, 2, warnings.join(' | '));
  assert.ok(warnings.some((w) => /WISPr-Bandwidth-Max-Up 4000 is out of range/.test(w)));
  assert.ok(
    warnings.some((w) =>
      /Mikrotik-Rate-Limit rx \(upload; tx left out, so the download too\) "fast" is unusable/.test(w),
    ),
  );
});

t('bad voucher arguments are refused before any packet', async (c) => {
  const m = method(c, [{ host: '127.0.0.1', port: c.radius.authPort, secret: c.radius.secret }]);
  for (const payment of [
    { method: 'voucher' },
    { method: 'voucher', code: 7 },
    { method: 'voucher', code: '' },
    { method: 'voucher', code: 'x'.repeat(254) },
    { method: 'voucher', code: 'a', password: 'p'.repeat(129) },
  ]) {
    assert.throws(
      () => m.precheck({ request: { mac: '02:00:00:00:00:01', payment }, now: 0 }),
      (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT',
    );
  }
});

t.run();
