// The kernel path's counter dump for `npm run bench -- meter --designs kernel,kernel-json`: what `nft -j list table
// netdev sluice_count` prints (portal/kernel-counters.ts: one named counter pair per client, the two address maps, the
// two chains with their rule), written from a simulated openNDS listing, so the counters grow with the simulator's
// traffic. A client's counters keep their nft handles while its counting epoch lasts (the portal's token) and get new
// ones when it changes (a reset, a return): a new epoch, as in the kernel. Printed as nft 1.0.6 prints it
// (test/fixtures/nft/): one line with jansson's ", " and ": " separators, the chains before their rules.
// Counters exist only for the clients of the first frame (those that bought before the measurement, which the meter's
// first listing knows): the kernel counts a client only from the auth sluice made for it, so an arrival the simulator
// adds later has none — counters the last listing does not hold would be a purchase, and make the meter list again.
// A client that leaves the listing keeps its counters, at their last count, as in the kernel: sluice deletes them
// only when it closes the gate.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const T = 'sluice_count';

export class NftDumpWriter {
  private handle = 20;
  private readonly epochs = new Map<string, { token: string; h: number; up: number; down: number; ip: string }>();
  private counted: Set<string> | undefined;
  constructor(private readonly dir: string) {}

  /** Frame `n`'s dump from an openNDS `json` listing: every listed client's counters, in bytes. */
  write(n: number, listing: string): void {
    const doc = JSON.parse(listing) as { clients: Record<string, Record<string, string | number>> };
    this.counted ??= new Set(Object.keys(doc.clients));
    const counters: unknown[] = [];
    const up: Array<[string, string]> = [];
    const down: Array<[string, string]> = [];
    for (const [mac, c] of Object.entries(doc.clients)) {
      if (!this.counted.has(mac)) continue;
      const token = String(c['token']);
      let e = this.epochs.get(mac);
      if (e === undefined || e.token !== token)
        this.epochs.set(mac, (e = { token, h: (this.handle += 2), up: 0, down: 0, ip: '' }));
      e.up = Number(c['upload_this_session']) * 1024;
      e.down = Number(c['download_this_session']) * 1024;
      e.ip = String(c['ip']);
    }
    for (const [mac, e] of this.epochs) {
      const hex = mac.replace(/:/g, '');
      counters.push({
        counter: {
          family: 'netdev',
          name: `cu_${hex}`,
          table: T,
          handle: e.h,
          packets: Math.ceil(e.up / 600),
          bytes: e.up,
        },
      });
      counters.push({
        counter: {
          family: 'netdev',
          name: `cd_${hex}`,
          table: T,
          handle: e.h + 1,
          packets: Math.ceil(e.down / 1400),
          bytes: e.down,
        },
      });
      up.push([mac, `cu_${hex}`]);
      down.push([mac, `cd_${hex}`]);
    }
    const chain = (name: string, hook: string): unknown => ({
      chain: {
        family: 'netdev',
        table: T,
        name,
        handle: name === 'count_up' ? 3 : 4,
        type: 'filter',
        hook,
        prio: -450,
        policy: 'accept',
      },
    });
    const rule = (name: string): unknown => ({
      rule: {
        family: 'netdev',
        table: T,
        chain: name,
        handle: name === 'count_up' ? 5 : 6,
        expr: [
          {
            counter: {
              map: {
                key: { payload: { protocol: 'ether', field: name === 'count_up' ? 'saddr' : 'daddr' } },
                data: name === 'count_up' ? '@cup' : '@cdown',
              },
            },
          },
        ],
      },
    });
    const dump = {
      nftables: [
        { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
        { table: { family: 'netdev', name: T, handle: 7 } },
        ...counters,
        { map: { family: 'netdev', name: 'cup', table: T, type: 'ether_addr', handle: 1, map: 'counter', elem: up } },
        {
          map: { family: 'netdev', name: 'cdown', table: T, type: 'ether_addr', handle: 2, map: 'counter', elem: down },
        },
        chain('count_up', 'ingress'),
        chain('count_down', 'egress'),
        rule('count_up'),
        rule('count_down'),
      ],
    };
    writeFileSync(join(this.dir, `nft-${n}.json`), `${nftJson(dump)}\n`);
  }
}

/** JSON as nft prints it (jansson, no flags): ", " between members, ": " after a key, no line breaks. */
function nftJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(nftJson).join(', ')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}: ${nftJson(x)}`)
      .join(', ')}}`;
  return JSON.stringify(v);
}

/**
 * A stand-in for `nft -j list table netdev sluice_count` that prints the next frame each call (the last one again once
 * they run out): a shell and `cat`, two execs where the real nft is one, so the fetch costs no less than nft's.
 */
export function nftStandIn(dir: string, frames: number): string[] {
  const n = join(dir, 'next');
  writeFileSync(n, '0\n');
  return [
    '/bin/sh',
    '-c',
    `read n < ${n}; echo $((n + 1)) > ${n}; [ $n -lt ${frames} ] || n=${frames - 1}; exec cat ${dir}/nft-$n.json`,
  ];
}
