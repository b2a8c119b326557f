// `npm run bench -- nft-scan [--clients 10000] [--rounds 7]`: the kernel path's counter dump read by
// portal/nft-scan.ts alone, without nft's run: the real nft 1.0.6 dumps (test/fixtures/nft/) and one of `--clients`
// clients in nft's layout (random MACs, counts past 2^32, as a router's table is after a while). Each size is scanned
// until its code is optimized, then timed in `--rounds` rounds of process CPU: the median and range per scan.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { scanCounterDump } from '../src/portal/nft-scan.ts';
import { prng } from '../src/prng.ts';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../test/fixtures/nft/nft-1.0.6-${name}.json`, import.meta.url));

/** A dump as nft 1.0.6 prints it (one line, jansson's separators), of `clients` clients with both counters. */
function dumpOf(clients: number): Buffer {
  const rnd = prng(7);
  const T = 'sluice_count';
  const counters: string[] = [];
  const up: string[] = [];
  const down: string[] = [];
  for (let i = 0; i < clients; i++) {
    const hex = Math.floor(rnd() * 2 ** 48)
      .toString(16)
      .padStart(12, '0');
    const mac = hex.replace(/(..)(?!$)/g, '$1:');
    const handle = 10 + 2 * i;
    const counter = (kind: string, h: number, packets: number, bytes: number): string =>
      `{"counter": {"family": "netdev", "name": "c${kind}_${hex}", "table": "${T}", "handle": ${h}, ` +
      `"packets": ${packets}, "bytes": ${bytes}}}`;
    counters.push(counter('u', handle, Math.floor(rnd() * 1e7), Math.floor(rnd() * 2 ** 36)));
    counters.push(counter('d', handle + 1, Math.floor(rnd() * 1e7), Math.floor(rnd() * 2 ** 36)));
    up.push(`["${mac}", "cu_${hex}"]`);
    down.push(`["${mac}", "cd_${hex}"]`);
  }
  const map = (name: string, handle: number, elem: string[]): string =>
    `{"map": {"family": "netdev", "name": "${name}", "table": "${T}", "type": "ether_addr", "handle": ${handle}, ` +
    `"map": "counter", "elem": [${elem.join(', ')}]}}`;
  const chain = (name: string, handle: number): string =>
    `{"chain": {"family": "netdev", "table": "${T}", "name": "${name}", "handle": ${handle}, "type": "filter", ` +
    `"hook": "ingress", "prio": -150}}`;
  const items = [
    `{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}`,
    `{"table": {"family": "netdev", "name": "${T}", "handle": 2}}`,
    ...counters,
    map('cup', 3, up),
    map('cdown', 4, down),
    chain('count_up', 5),
    chain('count_down', 6),
  ];
  return Buffer.from(`{"nftables": [${items.join(', ')}]}\n`);
}

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

export default async function nftScan(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { clients: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '7' } },
  });
  const clients = Number(values.clients);
  const rounds = Number(values.rounds);
  const big = dumpOf(clients);
  const read = scanCounterDump(big);
  if (read.count !== clients || !read.intact) throw new Error(`the ${clients}-client dump read as ${read.count}`);
  const sizes: Array<[string, Buffer]> = [
    ['3 clients (real)', fixture('3-clients')],
    ['64 clients (real)', fixture('64-clients')],
    [`${clients} clients`, big],
  ];
  for (const [name, bytes] of sizes) {
    // About 40 MB scanned a round, at least 20 scans.
    const n = Math.max(20, Math.round(4e7 / bytes.length));
    for (let k = 0; k < n; k++) scanCounterDump(bytes);
    const perScan: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t = cpuMs();
      for (let k = 0; k < n; k++) scanCounterDump(bytes);
      perScan.push(((cpuMs() - t) / n) * 1000);
    }
    perScan.sort((a, b) => a - b);
    const fmt = (us: number): string => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} us`);
    console.log(
      `[nft-scan] ${name}, ${bytes.length} B: ${fmt(perScan[perScan.length >> 1]!)} of CPU a scan ` +
        `(median of ${rounds} rounds of ${n}; ${fmt(perScan[0]!)}–${fmt(perScan[perScan.length - 1]!)})`,
    );
  }
}
