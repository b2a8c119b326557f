// `npm run bench -- pay-page [--loads 2000] [--rounds 5]`: what the pay page's files cost a router per page load
// (src/http/pay-page.ts), the shipped files/usr/share/sluice/portal: each load asks for index.html and its five
// scripts. Read from disk at each request (fs's readFile: open, fstat, read, close on libuv's pool) against served
// from memory after one stat each (PortalFiles). Process CPU per load, the median and range of `--rounds` rounds.
import { readFile } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PortalFiles } from '../src/http/pay-page.ts';

const DIR = new URL('../files/usr/share/sluice/portal/', import.meta.url).pathname;
const PAGE = ['index.html', 'portal.js', 'devices.js', 'restore.js', 'qr.js', 'elsewhere.js'].map((f) => join(DIR, f));

const readEach = (path: string): Promise<Buffer> =>
  new Promise((resolve, reject) => readFile(path, (err, b) => (err ? reject(err) : resolve(b))));

async function cpuPerLoad(loads: number, read: (path: string) => Promise<Buffer>): Promise<number> {
  const c0 = process.cpuUsage();
  for (let l = 0; l < loads; l++) await Promise.all(PAGE.map(read));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / loads;
}

export default async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { loads: { type: 'string' }, rounds: { type: 'string' } } });
  const loads = Number(values.loads ?? 2000);
  const rounds = Number(values.rounds ?? 5);
  const files = new PortalFiles();
  const ways: Array<[string, (path: string) => Promise<Buffer>]> = [
    ['read at each request', readEach],
    ['kept, one stat each', (path) => files.bytes(path)],
  ];
  // Warmed first: the optimizer's work is not a page load's.
  for (const [, read] of ways) await cpuPerLoad(200, read);
  const figures = new Map<string, number[]>(ways.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++)
    for (const [name, read] of ways) figures.get(name)!.push(await cpuPerLoad(loads, read));
  console.log(`pay page: process CPU per page load (6 files), ${loads} loads a round, ${rounds} rounds`);
  for (const [name, us] of figures) {
    us.sort((a, b) => a - b);
    const median = us[us.length >> 1]!;
    console.log(
      `  ${name.padEnd(22)} ${median.toFixed(0).padStart(5)} µs (${us[0]!.toFixed(0)}–${us.at(-1)!.toFixed(0)})`,
    );
  }
}
