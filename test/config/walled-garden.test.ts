// tier: fast
/**
 * `main.walled_garden` and `main.walled_garden_ports` (config/walled-garden.ts): host names only, a clear problem for
 * a wildcard, a URL or an address; and the hosts the enabled payment methods add (Cashu mints, an x402 RPC URL set by
 * the operator; never the facilitator).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configFromUci, configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { walledGardenHosts } from '../../src/config/garden-hosts.ts';

const PLAN = `config pricing 'p'\n\toption price_per_step '5'\n`;
const main = (lines: string) => `config sluice 'main'\n${lines}\n${PLAN}`;
const load = (text: string) => configFromUci(parseUci(text), { hostname: 'r' });
const problems = (text: string) => configFromUciPartial(parseUci(text), { hostname: 'r' }).problems;

test('absent: no host, ports 443 and 80', () => {
  assert.equal(load(PLAN).main.walledGarden, { hosts: [], ports: [443, 80] });
});

test('a list of host names, lower-cased, a trailing dot dropped, duplicates once; ports as given', () => {
  const c = load(
    main(
      "\tlist walled_garden 'Wallet.Example.com'\n\tlist walled_garden 'mint.example.net.'\n" +
        "\tlist walled_garden 'wallet.example.com'\n\toption walled_garden_ports '443 8443'",
    ),
  );
  assert.equal(c.main.walledGarden, { hosts: ['wallet.example.com', 'mint.example.net'], ports: [443, 8443] });
});

test('a wildcard, a URL, an address, a single label: each a problem naming the item; the others kept', () => {
  const text = main(
    ["'*.example.com'", "'https://wallet.example.com/'", "'10.0.0.1:443'", "'localhost'", "'ok.example.com'"]
      .map((v) => `\tlist walled_garden ${v}`)
      .join('\n'),
  );
  const found = problems(text);
  assert.equal(
    found.map((p) => [p.path, p.value]),
    [
      ['main.walled_garden', '*.example.com'],
      ['main.walled_garden', 'https://wallet.example.com/'],
      ['main.walled_garden', '10.0.0.1:443'],
      ['main.walled_garden', 'localhost'],
    ],
  );
  assert.match(found[0]!.reason, /wildcards/);
  const partial = configFromUciPartial(parseUci(text), { hostname: 'r' }).config;
  assert.equal(partial.main.walledGarden.hosts, ['ok.example.com']);
  assert.throws(() => load(text), /walled_garden/);
});

test('walled_garden_ports: numbers 1-65535 only', () => {
  assert.equal(
    problems(main("\toption walled_garden_ports '443 0'")).map((p) => p.path),
    ['main.walled_garden_ports'],
  );
  assert.equal(problems(main("\toption walled_garden_ports 'https'")).length, 1);
});

test("the methods' hosts: Cashu mints and an operator's x402 RPC URL; never the facilitator", () => {
  const c = load(
    main("\tlist walled_garden 'wallet.example.com'") +
      [
        "config tollgate 'tollgate'",
        "\toption enabled '1'",
        "\toption plan 'p'",
        "\toption price_per_step '1'",
        "\tlist mint 'https://mint.example.org/'",
        "\tlist mint 'https://Wallet.example.com:3338/cashu'",
        "config x402 'x402'",
        "\toption enabled '1'",
        "\toption facilitator_url 'https://facilitator.example.com/'",
        "\toption pay_to '0x1111111111111111111111111111111111111111'",
        "\toption network 'eip155:8453'",
        "\toption rpc_url 'https://rpc.example.io/v1'",
        '',
      ].join('\n'),
  );
  assert.equal(walledGardenHosts(c), ['wallet.example.com', 'mint.example.org', 'rpc.example.io']);
  // The network's default RPC is the router's own lookup, not something the operator asked customers to reach.
  const noRpc = { ...c, x402: { ...c.x402, rpcUrl: 'https://mainnet.base.org', rpcUrlSource: 'network-default' } };
  assert.equal(walledGardenHosts(noRpc as typeof c), ['wallet.example.com', 'mint.example.org']);
});

test.run();
