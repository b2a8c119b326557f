// The kernel's conntrack hash table sized as a router's for the length of a bench run.
// A close with sluice's own gate runs `conntrack -D -s <ip>` per address, and each walks the whole table, which is
// shared by every namespace: the kernel sizes it from RAM (RAM / 131072 below 1 GB, so 1024 buckets on a 128 MB
// router), so a 24 GB bench machine's 262144 buckets cost each walk ≈ 10 ms of CPU more than a router's would.
import { readFileSync, writeFileSync } from 'node:fs';

/** The table size of a 128 MB router (the kernel's RAM / 131072). */
export const ROUTER_BUCKETS = 1024;

const SYSCTL = '/proc/sys/net/netfilter/nf_conntrack_buckets';

/** The host's table size now, or null when the kernel has no conntrack (module not loaded). */
export function conntrackBuckets(): number | null {
  try {
    return Number(readFileSync(SYSCTL, 'utf8').trim());
  } catch {
    return null;
  }
}

/**
 * What `--conntrack-buckets` asks for: a count of buckets, or `host` (leave the table as it is).
 * Anything else is refused, so a typo cannot silently measure on the host's table.
 */
export function parseBuckets(said: string): number | 'host' {
  if (said === 'host') return 'host';
  const n = Number(said);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--conntrack-buckets: '${said}' is neither a count nor 'host'`);
  return n;
}

/**
 * Runs `body` with the table at `buckets` (writable only as root in the initial namespace) and puts the host's size
 * back when it ends, throws, or the bench is interrupted (SIGINT, SIGTERM: restored, then the signal's usual exit).
 * Returns what `body` returns and the size the run had (the host's when `host` or unwritable).
 */
export async function withConntrackBuckets<T>(
  buckets: number | 'host',
  body: (used: string) => Promise<T>,
): Promise<T> {
  const host = conntrackBuckets();
  if (buckets === 'host' || host === null || host === buckets)
    return body(host === null ? 'no conntrack' : `${host} (the host's)`);
  writeFileSync(SYSCTL, String(buckets));
  const restore = (): void => {
    try {
      writeFileSync(SYSCTL, String(host));
    } catch (err) {
      console.log(`# conntrack buckets: could not restore ${host}: ${(err as Error).message}`);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    restore();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const now = conntrackBuckets();
    const router = now === ROUTER_BUCKETS ? "a 128 MB router's; " : '';
    return await body(`${now} (${router}the host's ${host}, put back at the end)`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    restore();
  }
}
