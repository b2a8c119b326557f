// The moment sluice's own gate opens for a device, as the kernel tells it: `nft monitor new elements` in the router's
// namespace prints each element the moment its transaction commits, so the first `paid_mac` element of a MAC after a
// grant's call is when that device's packets start to pass. A grant's reply comes later (the daemon answers once the
// run ended and the journal is durable, and the reply crosses the bus), so the reply's time bounds the gate's from
// above. The monitor and the stamp on each of its lines run under SCHED_FIFO: on a busy machine a reader of the
// ordinary class read them up to 15 ms after the grant's reply had come (2 cores, load 2), the stamp taken where it
// reads them, not in the bench's event loop.
import { spawn, type ChildProcess } from 'node:child_process';
import { parseAddElement } from '../../src/portal/nft-coalesce.ts';
import { OWN_GATE_TABLE } from '../../src/portal/own-gate-nft.ts';
import { createInterface } from 'node:readline';

const PAID_MAC_SET = `inet ${OWN_GATE_TABLE} paid_mac`;

/** The MACs an `nft monitor` line added to the own gate's `paid_mac` set, lower-case; none for any other line. */
export function paidMacsOf(line: string): string[] {
  const added = parseAddElement(line.trim());
  if (added?.set !== PAID_MAC_SET) return [];
  return added.elements.split(',').map((mac) => mac.trim().toLowerCase());
}

/** Each line read, stamped with the wall clock in ms as it is read, on stdout at once. */
const STAMP =
  'python3 -u -c "import sys, time\nfor l in sys.stdin: sys.stdout.write(\'%.3f %s\' % (time.time() * 1000, l))"';

/** Each MAC's times (performance.now()) at which its element was added, in order. */
export class GateWatch {
  private readonly seen = new Map<string, number[]>();
  private constructor(private readonly child: ChildProcess) {}

  /** Watches the router namespace `ns`; resolves once nft runs (its first output is an element, so wait on spawn). */
  static async start(ns: string): Promise<GateWatch> {
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, 'chrt', '-f', '50', 'sh', '-c', `nft monitor new elements | ${STAMP}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    const watch = new GateWatch(child);
    createInterface({ input: child.stdout! }).on('line', (stamped) => {
      const space = stamped.indexOf(' ');
      // The stamp is the wall clock's, in ms; performance.now() counts from timeOrigin on the same clock.
      const at = Number(stamped.slice(0, space)) - performance.timeOrigin;
      for (const mac of paidMacsOf(stamped.slice(space + 1))) {
        const times = watch.seen.get(mac) ?? [];
        times.push(at);
        watch.seen.set(mac, times);
      }
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    // `ip netns exec`, then nft's own start and its netlink subscription, and python's: nothing comes this early.
    await new Promise((r) => setTimeout(r, 500));
    if (child.exitCode !== null) throw new Error(`nft monitor in ${ns} exited (${child.exitCode})`);
    return watch;
  }

  /** When the MAC's gate opened at or after `since`, or undefined if the kernel has not said so. */
  openedAfter(mac: string, since: number): number | undefined {
    return this.seen.get(mac.toLowerCase())?.find((t) => t >= since);
  }

  stop(): void {
    try {
      process.kill(-this.child.pid!, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
}
