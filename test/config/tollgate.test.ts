// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { normalizeMintUrl } from '../../src/cashu/mint-url.ts';
import { configFromUci, configFromUciPartial } from '../../src/config/load.ts';
import { reloadDiff } from '../../src/config/reload-diff.ts';
import { parseUci } from '../../src/config/uci.ts';

const PLANS =
  `config pricing 'time'\n\toption price_per_step '5'\nconfig pricing 'free'\n\toption price_per_step ` +
  `'0'\n\toption trial_every '86400'\n`;
const section = (extra: string, enabled = '1') =>
  `${PLANS}config tollgate 'tollgate'\n\toption enabled '${enabled}'\n${extra}`;
const GOOD =
  `\toption listen '192.168.1.1:2121'\n\toption plan 'time'\n\tlist mint ` +
  `'HTTPS://Mint.Example.com:443/cashu/'\n\tlist mint 'https://mint.example.com/cashu'\n\tlist mint ` +
  `'http://127.0.0.1:3338'\n\toption price_per_step '21'\n`;

test('a whole section: mints normalised and deduplicated, defaults for custody', () => {
  const c = configFromUci(parseUci(section(GOOD)), { hostname: 'r' });
  assert.equal(c.tollgate, {
    enabled: true,
    listen: { host: '192.168.1.1', port: 2121 },
    plan: 'time',
    mints: ['https://mint.example.com/cashu', 'http://127.0.0.1:3338'],
    unit: 'sat',
    pricePerStep: 21n,
    minSteps: 1n,
    maxSteps: null,
    maxBalance: 50_000n,
    payoutAddress: '',
    payoutMin: 5_000n,
  });
});

test("absent or disabled: null (and no problem for a disabled section's bad values)", () => {
  assert.is(configFromUci(parseUci(PLANS), { hostname: 'r' }).tollgate, null);
  assert.is(configFromUci(parseUci(section(`\toption unit 'usd'\n`, '0')), { hostname: 'r' }).tollgate, null);
});

test('every bad option is named with its reason; the partial loader disables the section', () => {
  const text = section(
    `\toption plan 'free'\n\tlist mint 'ftp://x'\n\toption unit 'usd'\n\toption price_per_step '0'\n\toption ` +
      `min_steps '3'\n\toption max_steps '2'\n\toption payout_address 'not an address'\n`,
  );
  const { config, problems } = configFromUciPartial(parseUci(text), { hostname: 'r' });
  assert.is(config.tollgate, null);
  const paths = problems.map((p) => p.path);
  for (const p of [
    'tollgate.plan',
    'tollgate.mint',
    'tollgate.unit',
    'tollgate.price_per_step',
    'tollgate.max_steps',
    'tollgate.payout_address',
  ])
    assert.ok(paths.includes(p), p);
  assert.ok(problems.every((p) => p.effect === 'section-disabled'));
  assert.match(problems.find((p) => p.path === 'tollgate.plan')!.reason, /free-trial/);
  const missing = configFromUciPartial(parseUci(section(`\toption plan 'nope'\n`)), { hostname: 'r' }).problems.map(
    (p) => p.path,
  );
  assert.ok(
    missing.includes('tollgate.plan') &&
      missing.includes('tollgate.mint') &&
      missing.includes('tollgate.price_per_step'),
  );
});

test('payout address: a Lightning address or an LNURL; max_balance must fit one minimum purchase', () => {
  const ok = configFromUci(
    parseUci(
      section(
        `${GOOD}\toption payout_address 'Cafe@Example.com'\n\toption max_balance '100000'\n\toption payout_min ` +
          `'2100'\n`,
      ),
    ),
    { hostname: 'r' },
  );
  assert.is(ok.tollgate!.payoutAddress, 'cafe@example.com');
  assert.is(ok.tollgate!.maxBalance, 100_000n);
  const small = configFromUciPartial(
    parseUci(section(`${GOOD}\toption min_steps '10'\n\toption max_balance '100'\n`)),
    { hostname: 'r' },
  );
  assert.ok(small.problems.some((p) => p.path === 'tollgate.max_balance'));
});

test('normalizeMintUrl: one spelling per mint', () => {
  assert.is(normalizeMintUrl('https://MINT.example.com:443/'), 'https://mint.example.com');
  assert.is(normalizeMintUrl('http://mint.example.com:3338/a//'), 'http://mint.example.com:3338/a');
  assert.is(normalizeMintUrl('https://u:p@mint.example.com'), null);
  assert.is(normalizeMintUrl('mint.example.com'), null);
});

test('switching tollgate on or off, or moving its door, takes no restart (the plugin host follows it)', () => {
  const on = configFromUci(parseUci(section(GOOD)), { hostname: 'r' });
  const off = configFromUci(parseUci(PLANS), { hostname: 'r' });
  const running = {
    main: off.main,
    http: off.http,
    radius: false,
    x402: false,
    escrow: false,
    batchSettlement: false,
    upto: false,
    tollgate: false,
  };
  assert.equal(reloadDiff(running, on), []);
  assert.equal(reloadDiff({ ...running, tollgate: true }, off), []);
});

test.run();
