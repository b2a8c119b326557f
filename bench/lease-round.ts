// `npm run bench -- lease-round [--clients 32] [--rounds 200] [--ttl 90] [--status 60]`
// What the venue lease's switch costs a router (docs/roaming.md, "The holder's switch"): one round is one nft batch
// renewing every leased device's `lease_live` element (portal/ipv6-gate-nft.ts leaseScript), run here as the daemon
// runs it, `nft -f -` on the real table `netdev sluice_gate` in a network namespace of its own (root, nft, ip). Prints
// the CPU of a round (nft's, reaped: /proc/self/stat cutime + cstime) and what it comes to per second of wall at the
// rounds' period for that TTL and status interval (upstream/venue-lease-time.ts), with the load. Asserts nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gateTableScript, leaseScript } from '../src/portal/ipv6-gate-nft.ts';
import { leaseTimeoutMs, renewEveryMs } from '../src/upstream/venue-lease-time.ts';

const arg = (argv: string[], name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};

/** CPU ms of this process's reaped children (utime + stime), from /proc/self/stat. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 of stat(5), 14 and 15 after the name.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
}

export default async function leaseRound(argv: string[]): Promise<void> {
  const clients = arg(argv, '--clients', 32);
  const rounds = arg(argv, '--rounds', 200);
  const ttlMs = arg(argv, '--ttl', 90) * 1000;
  const statusMs = arg(argv, '--status', 60) * 1000;
  const ns = `lr-${randomBytes(3).toString('hex')}`;
  const macs = Array.from(
    { length: clients },
    (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  );
  const nft = (script: string): void => {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nft: ${r.stderr}`);
  };
  const dir = mkdtempSync(join(tmpdir(), 'lease-round-'));
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'lan1']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lan', 'up']);
    const timeout = leaseTimeoutMs(ttlMs);
    nft(gateTableScript({ devices: ['lan'], open: macs, leased: macs, garden: [], ports: [] }));
    writeFileSync(join(dir, 'round.nft'), leaseScript(macs, timeout));
    writeFileSync(join(dir, 'empty.nft'), '');
    // A shell in the namespace runs nft on the batch `rounds` times, as the daemon's command shell does (a fork of sh
    // and nft each); an empty batch the same way gives nft's start, the floor of any batch.
    const loop = (file: string): number => {
      const from = childrenCpuMs();
      const body = `i=0; while [ $i -lt ${rounds} ]; do nft -f '${join(dir, file)}' || exit 1; i=$((i+1)); done`;
      execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', body]);
      return (childrenCpuMs() - from) / rounds;
    };
    const emptyMs = loop('empty.nft');
    const roundMs = loop('round.nft');
    const every = renewEveryMs(timeout, statusMs);
    const perS = (roundMs * 1000) / every;
    console.log(
      `# lease-round: ${clients} leased devices, ${rounds} rounds: ${roundMs.toFixed(2)} ms of CPU a round ` +
        `(an empty nft batch ${emptyMs.toFixed(2)}); TTL ${ttlMs / 1000} s → element timeout ${timeout} ms, ` +
        `a round every ${every} ms: ${perS.toFixed(3)} ms/s (load ${loadavg()[0]!.toFixed(1)})`,
    );
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}
