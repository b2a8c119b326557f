// tier: chain
// The pure parts of the x402 method without a chain: payload parsing (v2, v1, header form, every malformed field),
// the local checks in order with their codes, the facilitator client's reading of both error dialects, the rate
// limiter, and the config readers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { privateKeyToAccount } from 'viem/accounts';
import { parseExactPayment, encodeHeader } from '../../src/x402/payload.ts';
import { verifyLocally, type LocalRequirements } from '../../src/x402/verify.ts';
import { chainIdOf, toCaip2, knownTokenDomain } from '../../src/x402/networks.ts';
import { FacilitatorClient } from '../../src/x402/facilitator.ts';
import { RateLimiter } from '../../src/listener/rate-limit.ts';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { signAuthorization } from '../chain/index.ts';
import { thrownCode } from '../helpers/assert.ts';

const test = suite('x402 pure parts');
const buyer = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
const ASSET = '0x1111111111111111111111111111111111111111' as const;
const PAY_TO = '0x2222222222222222222222222222222222222222' as const;
const token = { address: ASSET, name: 'USDC', version: '2', chainId: 84532 };
const NOW = BigInt(Math.floor(Date.now() / 1000));

function req(over: Partial<LocalRequirements> = {}): LocalRequirements {
  return {
    network: 'eip155:84532',
    chainId: 84532,
    asset: ASSET,
    domain: { name: 'USDC', version: '2' },
    payTo: PAY_TO,
    price: 1000n,
    now: NOW,
    marginSeconds: 6n,
    maxTimeoutSeconds: 300n,
    ...over,
  };
}

async function v2(
  over: Record<string, unknown> = {},
  auth: Parameters<typeof signAuthorization>[2] = { to: PAY_TO, value: 1000n },
) {
  const { authorization, signature } = await signAuthorization(buyer, token, auth);
  return {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: 'eip155:84532',
      amount: '1000',
      asset: ASSET,
      payTo: PAY_TO,
      maxTimeoutSeconds: 300,
      extra: { name: 'USDC', version: '2' },
      ...over,
    },
    payload: { signature, authorization },
  };
}

async function codeOf(p: unknown, r = req()): Promise<string> {
  try {
    await verifyLocally(parseExactPayment(p), r);
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

test('networks: CAIP-2 and v1 names; the USDC domains differ between Base and Base Sepolia', () => {
  assert.is(toCaip2('base'), 'eip155:8453');
  assert.is(toCaip2('base-sepolia'), 'eip155:84532');
  assert.is(toCaip2('eip155:31337'), 'eip155:31337');
  assert.is(toCaip2('solana'), null);
  assert.is(toCaip2('eip155:0x1'), null);
  assert.is(chainIdOf('toString'), null, 'no prototype keys');
  assert.equal(knownTokenDomain('eip155:8453', '0x833589FCD6EDB6E08F4C7C32D4F71B54BDA02913'), {
    name: 'USD Coin',
    version: '2',
  });
  assert.equal(knownTokenDomain('eip155:84532', '0x036CbD53842c5426634e7929541eC2318f3dCF7e'), {
    name: 'USDC',
    version: '2',
  });
});

test('payload: v2 object, its base64 header form and a v1 payload parse to the same authorization', async () => {
  const p = await v2();
  const a = parseExactPayment(p);
  const b = parseExactPayment(encodeHeader(p));
  assert.equal(b.authorization, a.authorization);
  assert.is(a.network, 'eip155:84532');
  assert.is(a.authorization.value, 1000n);
  const v1 = parseExactPayment({ x402Version: 1, scheme: 'exact', network: 'base-sepolia', payload: p.payload });
  assert.is(v1.network, 'eip155:84532');
  assert.is(v1.accepted, null);
});

test(
  'payload: every malformed field is ERR_X402_PAYLOAD_INVALID ' + '(or unsupported signature), never a crash',
  async () => {
    const p = await v2();
    const auth = p.payload.authorization;
    const bad = (patch: (q: any) => void) => {
      const q = structuredClone(p) as any;
      patch(q);
      return thrownCode(() => parseExactPayment(q));
    };
    assert.is(
      thrownCode(() => parseExactPayment(null)),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      thrownCode(() => parseExactPayment('')),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      thrownCode(() => parseExactPayment('not base64!')),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      thrownCode(() => parseExactPayment('x'.repeat(40_000))),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      thrownCode(() => parseExactPayment({ ...p, pad: 'x'.repeat(9000) })),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.x402Version = 3;
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        delete q.accepted;
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.payload.authorization.value = 1000;
      }),
      'ERR_X402_PAYLOAD_INVALID',
      'numbers lose precision',
    );
    assert.is(
      bad((q) => {
        q.payload.authorization.value = '-1';
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.payload.authorization.value = '1'.repeat(79);
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.payload.authorization.value = (1n << 256n).toString();
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.payload.authorization.nonce = '0x1234';
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.payload.authorization.from = 'alice';
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.payload.signature = 'zz';
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.is(
      bad((q) => {
        q.payload.signature = `0x${'ab'.repeat(100)}`;
      }),
      'ERR_X402_SIGNATURE_UNSUPPORTED',
    );
    assert.is(
      bad((q) => {
        q.accepted.asset = 42;
      }),
      'ERR_X402_PAYLOAD_INVALID',
    );
    assert.ok(auth.from.startsWith('0x'));
  },
);

test("local checks: each failure its own code, in the facilitator's order", async () => {
  assert.is(await codeOf(await v2()), 'ok');
  assert.is(await codeOf(await v2({ scheme: 'upto' })), 'ERR_X402_SCHEME_UNSUPPORTED');
  assert.is(await codeOf(await v2({ network: 'base' })), 'ERR_X402_NETWORK_MISMATCH');
  assert.is(await codeOf(await v2({ asset: PAY_TO })), 'ERR_X402_ASSET_MISMATCH');
  assert.is(await codeOf(await v2({ extra: { name: 'USD Coin', version: '2' } })), 'ERR_X402_DOMAIN_MISMATCH');
  assert.is(await codeOf(await v2({ payTo: ASSET })), 'ERR_X402_PAY_TO_MISMATCH');
  assert.is(await codeOf(await v2({}, { to: ASSET, value: 1000n })), 'ERR_X402_PAY_TO_MISMATCH');
  assert.is(await codeOf(await v2({}, { to: PAY_TO, value: 999n })), 'ERR_X402_UNDERPAID');
  assert.is(
    await codeOf(await v2({}, { to: PAY_TO, value: 1000n, validAfter: 0n, validBefore: NOW + 5n })),
    'ERR_X402_EXPIRED',
    'inside the 6 s margin',
  );
  assert.is(await codeOf(await v2({}, { to: PAY_TO, value: 1000n, validAfter: NOW + 1n })), 'ERR_X402_NOT_YET_VALID');
  assert.is(
    await codeOf(await v2({}, { to: PAY_TO, value: 1000n, validBefore: NOW + 3600n })),
    'ERR_X402_WINDOW_TOO_LONG',
  );
  assert.is(
    await codeOf(await v2({}, { to: PAY_TO, value: 1000n, domain: { version: '1' } })),
    'ERR_X402_SIGNATURE_INVALID',
  );
  assert.is(
    await codeOf(await v2({}, { to: PAY_TO, value: 1000n, domain: { verifyingContract: PAY_TO } })),
    'ERR_X402_SIGNATURE_INVALID',
  );
  assert.is(
    await codeOf(await v2(), req({ chainId: 8453 })),
    'ERR_X402_SIGNATURE_INVALID',
    'signed for another chain id',
  );
  // A value altered after signing.
  const tampered = await v2();
  tampered.payload.authorization.value = '5000';
  assert.is(await codeOf(tampered), 'ERR_X402_SIGNATURE_INVALID');
  // High-s malleated copy of a good signature.
  const good = await v2();
  const sig = good.payload.signature;
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = (n - BigInt(`0x${sig.slice(66, 130)}`)).toString(16).padStart(64, '0');
  const v = sig.slice(130) === '1b' ? '1c' : '1b';
  good.payload.signature = `${sig.slice(0, 66)}${s}${v}` as `0x${string}`;
  assert.is(await codeOf(good), 'ERR_X402_SIGNATURE_INVALID');
});

async function serve(
  handler: (path: string) => { status: number; body: string; delayMs?: number },
): Promise<{ url: string; server: Server }> {
  const server = createServer((rq, rs) => {
    const a = handler(rq.url ?? '');
    rq.resume();
    setTimeout(() => rs.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body), a.delayMs ?? 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test('facilitator client: both dialects, and what counts as "no answer"', async () => {
  const body = { x402Version: 2 as const, paymentPayload: {}, paymentRequirements: {} };
  const answers: Record<string, { status: number; body: string; delayMs?: number }> = {};
  const { url, server } = await serve((path) => answers[path]!);
  const c = new FacilitatorClient({ url, timeoutMs: 1500 }); // generous: the CI machine may be loaded
  try {
    answers['/verify'] = { status: 200, body: '{"isValid":true,"payer":"0xabc"}' };
    assert.equal(await c.verify(body), { ok: true, payer: '0xabc' });
    answers['/verify'] = {
      status: 200,
      body: '{"isValid":false,"invalidReason":"invalid_exact_evm_payload_signature","invalidMessage":"bad sig"}',
    };
    assert.equal(await c.verify(body), {
      ok: false,
      reason: 'invalid_exact_evm_payload_signature',
      message: 'bad sig',
    });
    answers['/verify'] = {
      status: 400,
      body: '{"isValid":false,"invalidReason":"invalid_signature","invalidReasonDetails":"recovered 0x1"}',
    };
    assert.equal(await c.verify(body), { ok: false, reason: 'invalid_signature', message: 'recovered 0x1' });
    answers['/verify'] = { status: 502, body: '{"error":"bad gateway"}' };
    assert.is(await c.verify(body).catch((e) => e.code), 'ERR_X402_FACILITATOR_UNAVAILABLE');
    answers['/verify'] = { status: 200, body: '<html>' };
    assert.is(await c.verify(body).catch((e) => e.code), 'ERR_X402_FACILITATOR_UNAVAILABLE');
    answers['/verify'] = { status: 200, body: '{"isValid":true}', delayMs: 3000 };
    assert.is(await c.verify(body).catch((e) => e.code), 'ERR_X402_FACILITATOR_UNAVAILABLE');

    answers['/settle'] = { status: 200, body: '{"success":true,"transaction":"0xfeed","network":"eip155:84532"}' };
    assert.equal(await c.settle(body), { status: 'settled', transaction: '0xfeed', payer: null });
    answers['/settle'] = { status: 200, body: '{"success":true,"transaction":""}' };
    assert.is((await c.settle(body)).status, 'unknown', 'success without a transaction proves nothing');
    answers['/settle'] = {
      status: 400,
      body: '{"success":false,"errorReason":"invalid_payment_expired","errorMessage":"too late"}',
    };
    assert.equal(await c.settle(body), { status: 'failed', reason: 'invalid_payment_expired', message: 'too late' });
    answers['/settle'] = { status: 200, body: '{"success":true,"transaction":"0x1"}', delayMs: 3000 };
    assert.is((await c.settle(body)).status, 'unknown', 'a timeout may have moved money');
    answers['/settle'] = { status: 500, body: '{}' };
    assert.is((await c.settle(body)).status, 'unknown');
    answers['/supported'] = {
      status: 200,
      body: '{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:84532"},{"bad":1}]}',
    };
    assert.equal(await c.supported(), [{ x402Version: 2, scheme: 'exact', network: 'eip155:84532' }]);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('rate limiter: a burst of perMinute, then refill over time; bounded number of IPs', () => {
  let now = 0;
  const r = new RateLimiter(3, { now: () => now }, 2);
  assert.equal([r.take('a'), r.take('a'), r.take('a'), r.take('a')], [true, true, true, false]);
  now += 20_000;
  assert.is(r.take('a'), true, 'one token back after a third of a minute');
  assert.is(r.take('a'), false);
  r.take('b');
  r.take('c'); // evicts the least recently used
  assert.is(r.take('a'), true, 'a was evicted and starts afresh');
});

test('config: x402 and http sections validate when enabled, v1 network names become CAIP-2', () => {
  const load = (text: string) =>
    configFromUciPartial(
      parseUci(`config sluice 'main'\nconfig pricing 'p'\n\toption price_per_step '1'\n${text}`, 't'),
      { hostname: 'h' },
    );
  const ok = load(
    `config x402 'x402'\n\toption enabled '1'\n\toption facilitator_url 'https://f.example'\n\toption network ` +
      `'base-sepolia'\n\toption pay_to '0xAbCdEf0000000000000000000000000000000001'\nconfig http 'http'\n\toption ` +
      `listen '192.168.1.1:2122'\n`,
  );
  assert.equal(ok.problems, []);
  assert.is(ok.config.x402.enabled, true);
  assert.is(ok.config.x402.network, 'eip155:84532');
  assert.is(ok.config.x402.chainId, 84532);
  assert.is(ok.config.x402.payTo, '0xabcdef0000000000000000000000000000000001');
  assert.equal([ok.config.http.host, ok.config.http.port], ['192.168.1.1', 2122]);
  const bad = load(
    `config x402 'x402'\n\toption enabled '1'\n\toption network 'solana'\n\toption max_timeout_seconds ` +
      `'5'\nconfig http 'http'\n\toption listen 'nope'\n`,
  );
  assert.is(bad.config.x402.enabled, false, 'a bad enabled section is switched off');
  const paths = bad.problems.map((p) => p.path).sort();
  assert.equal(paths, [
    'http.listen',
    'x402.facilitator_url',
    'x402.max_timeout_seconds',
    'x402.network',
    'x402.pay_to',
  ]);
  assert.is(load('').config.http.host, '', 'off by default');
});

test.run();
