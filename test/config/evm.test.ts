// tier: fast
/**
 * The x402 methods' sections (x402, upto, escrow, batch_settlement) read their network, addresses, facilitator URL
 * and timeout through one set of parsers (src/config/evm.ts, values.ts): the same mistake gets the same reason in
 * every section, and a v1 network name is stored as CAIP-2 with its chain id in each.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';

const A = `0x${'a'.repeat(40)}`;
const SECTIONS: Record<string, string> = {
  x402: `config x402 'x402'\n\toption enabled '1'\n\toption pay_to '${A}'\n`,
  upto: `config upto 'upto'\n\toption enabled '1'\n\toption pay_to '${A}'\n`,
  escrow: `config escrow 'escrow'\n\toption enabled '1'\n\toption address '${A}'\n\toption seller '${A}'\n`,
  batch_settlement:
    `config batch_settlement 'batch_settlement'\n\toption enabled '1'\n\toption receiver '${A}'\n` +
    `\toption receiver_authorizer '${A}'\n`,
};
const PLAN = `config pricing 'p'\n\toption price_per_step '5'\n`;

function problemsOf(section: string, extra: string): Map<string, string> {
  const text = `config sluice 'main'\n${PLAN}${SECTIONS[section]}${extra}`;
  const { problems } = configFromUciPartial(parseUci(text), { hostname: 'r' });
  return new Map(problems.filter((p) => p.section === section).map((p) => [p.option, p.reason]));
}

test('a bad network, URL and timeout read the same in every x402 section', () => {
  const reasons = Object.keys(SECTIONS).map((section) =>
    problemsOf(
      section,
      "\toption network 'eth-mainnet'\n\toption facilitator_url 'ftp://f.example'\n\toption timeout '500'\n",
    ),
  );
  for (const option of ['network', 'facilitator_url']) {
    const seen = new Set(reasons.map((r) => r.get(option)));
    assert.is(seen.size, 1, `${option}: ${[...seen].join(' | ')}`);
    assert.ok([...seen][0], `${option} is a problem in every section`);
  }
  assert.match(reasons[0]!.get('network')!, /eip155:<chain id>/);
  // escrow has no timeout of its own; the three that do agree.
  const timeouts = new Set(reasons.flatMap((r) => (r.has('timeout') ? [r.get('timeout')] : [])));
  assert.equal([...timeouts], ['must be a number of seconds from 1 to 120']);
});

test('a bad address reads the same in every section; a v1 network name is stored as CAIP-2 with its chain id', () => {
  const bad = [
    problemsOf('x402', "\toption pay_to '0x12'\n").get('pay_to'),
    problemsOf('upto', "\toption pay_to '0x12'\n").get('pay_to'),
    problemsOf('escrow', "\toption seller '0x12'\n").get('seller'),
    problemsOf('batch_settlement', "\toption receiver '0x12'\n").get('receiver'),
  ];
  assert.equal(new Set(bad).size, 1, bad.join(' | '));
  const text =
    `config sluice 'main'\n${PLAN}` +
    Object.values(SECTIONS)
      .map((s) => `${s}\toption network 'base-sepolia'\n\toption facilitator_url 'http://127.0.0.1:4020'\n`)
      .join('');
  const { config } = configFromUciPartial(parseUci(text), { hostname: 'r' });
  for (const c of [config.x402, config.upto, config.escrow, config.batchSettlement]) {
    assert.equal([c?.network, c?.chainId], ['eip155:84532', 84532]);
  }
});

test.run();
