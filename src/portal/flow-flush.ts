/**
 * When a client's gate closes, its established flows end with it: sluice deletes the client's conntrack entries
 * (`conntrack -D` by each of its IPv4 and IPv6 addresses, both ways). openNDS deletes none at a deauth, and a flow a
 * flowtable offloaded (openNDS 10.3.1's, firewall4's) no longer passes the portal's filter at all: it would go on
 * carrying a download the session no longer pays for. Deleting its entry ends the offloaded flow too (the flowtable
 * drops a flow whose entry is gone); the client's next packet of it meets the closed gate.
 *
 * The addresses come from the kernel's neighbour tables (`/proc/net/arp`, and `ip -6 neigh` for IPv6, which has no
 * /proc file: every entry of that MAC, resolved or not): a client that changed its address has both. Its IPv6 stops
 * at the IPv6 gate anyway (ipv6-gate.ts); the entries go so that nothing of the old flows is left to pick up.
 * Both run through a shell of their own (command-shell.ts 'flows'): a close's deletes never hold a gate's nft run.
 * `conntrack` (conntrack-tools) is an optional package on OpenWrt; without it the flows run on until they end (logged
 * once).
 */
import type { spawn as nodeSpawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { tryNormalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import { isIpv4 } from './kernel-quota-nft.ts';
import { NEIGHBOUR_TABLE } from './neighbours.ts';
import { sharedCommandShell } from './command-shell.ts';

/** Every IPv4 address `/proc/net/arp`'s text holds for `mac` (canonical form). */
export function addressesOf(table: string, mac: string): string[] {
  const out: string[] = [];
  for (const line of table.split('\n').slice(1)) {
    const [ip, , , hw] = line.trim().split(/\s+/);
    if (ip !== undefined && hw !== undefined && isIpv4(ip) && tryNormalizeMac(hw) === mac && !out.includes(ip))
      out.push(ip);
  }
  return out;
}

/** Every IPv6 address `ip -6 neigh show`'s text holds for `mac` (canonical form). */
export function ipv6AddressesOf(table: string, mac: string): string[] {
  const out: string[] = [];
  // "fd77::101 dev br-lan lladdr 02:00:00:00:0c:01 REACHABLE", one entry a line.
  for (const line of table.split('\n')) {
    const words = line.trim().split(/\s+/);
    const at = words.indexOf('lladdr');
    const ip = words[0];
    if (ip === undefined || !ip.includes(':') || at < 0 || tryNormalizeMac(words[at + 1] ?? '') !== mac) continue;
    if (!out.includes(ip)) out.push(ip);
  }
  return out;
}

/**
 * `ip -6 neigh show` (iproute2 or busybox): '' when it cannot run. Through a long-lived shell (command-shell.ts), as
 * conntrack below: a spawn from Node forks the whole daemon.
 */
async function readIpv6Neighbours(): Promise<string> {
  const r = await sharedCommandShell('flows').run({ argv: ['ip', '-6', 'neigh', 'show'], stdin: '', timeoutMs: 5000 });
  return r.kind === 'exited' && r.code === 0 ? (r.stdout?.toString('utf8') ?? '') : '';
}

export interface FlowFlushOptions {
  /** `conntrack` as argv (its `-D -s <ip>` and `-D -d <ip>` are appended). */
  command?: readonly string[];
  /** `/proc/net/arp`'s path, or a function that reads the table (null: unreadable). */
  neighbours?: string | (() => Promise<string | null>);
  /** `ip -6 neigh show`'s text (default: runs it). */
  ipv6Neighbours?: () => Promise<string>;
  log?: Log;
  /** Each conntrack run spawned (tests); default: through the thread's shell. */
  spawn?: typeof nodeSpawn;
}

/** A function that deletes a client's conntrack entries; never throws. */
export function flowFlusher(options: FlowFlushOptions = {}): (mac: string) => Promise<number> {
  const [cmd, ...base] = options.command ?? ['conntrack'];
  const log = options.log ?? silentLogger;
  const spawn = options.spawn;
  let missingLogged = false;
  const missing = (): number => {
    if (!missingLogged) log.warn('conntrack cannot run: a closed gate leaves its flows until they end', {});
    missingLogged = true;
    return 0;
  };
  // conntrack prints "N flow entries have been deleted." on stderr; 1 when none matched.
  const deletedIn = (stderr: string): number => Number(/(\d+) flow entr/.exec(stderr)?.[1] ?? 0);
  const run = async (args: string[]): Promise<number> => {
    if (spawn === undefined) {
      const r = await sharedCommandShell('flows').run({ argv: [cmd!, ...base, ...args], stdin: '', timeoutMs: 5000 });
      if (r.kind === 'spawn-failed') return missing();
      return r.kind === 'exited' ? deletedIn(r.stderr) : 0;
    }
    return new Promise((resolve) => {
      const child = spawn(cmd!, [...base, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', () => resolve(missing()));
      child.on('close', () => resolve(deletedIn(err)));
    });
  };
  return async (mac) => {
    const from = options.neighbours ?? NEIGHBOUR_TABLE;
    const table = (typeof from === 'string' ? await readFile(from, 'utf8').catch(() => '') : await from()) ?? '';
    const table6 = await (options.ipv6Neighbours ?? readIpv6Neighbours)();
    let deleted = 0;
    for (const ip of addressesOf(table, mac)) {
      deleted += await run(['-D', '-s', ip]);
      deleted += await run(['-D', '-d', ip]);
    }
    for (const ip of ipv6AddressesOf(table6, mac)) {
      deleted += await run(['-D', '-f', 'ipv6', '-s', ip]);
      deleted += await run(['-D', '-f', 'ipv6', '-d', ip]);
    }
    return deleted;
  };
}
