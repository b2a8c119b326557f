/**
 * A device's real packets through a router, for the tests of a gate's kernel side: three network namespaces, the
 * router's (`lan` to the device, `wan` to the upstream, forwarding on), the device's (`dev0`, with the device's MAC,
 * its default route via the router) and the upstream's (`up0`), and a probe: one UDP datagram every 10 ms from the
 * device to the upstream, which echoes it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** The probes in a row the device may miss and still count as passing: a tenth of a second's worth. */
const PASSING_WITHIN = 10;

export interface DeviceNetns {
  /** The router's namespace: where the gate under test runs its nft. */
  readonly router: string;
  readonly device: string;
  readonly upstream: string;
  /** The device's address on the router's LAN. */
  readonly deviceIp: string;
  /** `args` run in the router's namespace (`ip netns exec`); their output. */
  inRouter(...args: string[]): string;
  /** The probe's sender and echo started, on UDP `port` of the upstream. */
  startProbe(port: number): Probe;
  /** Deletes the three namespaces (what is already gone is skipped). */
  close(): void;
}

/**
 * The namespaces `<prefix>-<random>-{r,c,u}` (labs coexist), the LAN `<lan>.0/24` (the router .1, the device .101)
 * and the upstream link `<wan>.0/24` (the router .1, the upstream .2).
 */
export function deviceNetns(prefix: string, mac: string, lan: string, wan: string): DeviceNetns {
  const id = randomBytes(3).toString('hex');
  const [R, C, U] = ['r', 'c', 'u'].map((n) => `${prefix}-${id}-${n}`) as [string, string, string];
  const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
  const inRouter = (...args: string[]): string => ip('netns', 'exec', R, ...args);
  const deviceIp = `${lan}.101`;
  const upstreamIp = `${wan}.2`;
  const close = (): void => {
    for (const ns of [R, C, U]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  };
  try {
    for (const ns of [R, C, U]) ip('netns', 'add', ns);
    ip('-n', R, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'dev0', 'netns', C);
    ip('-n', R, 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'up0', 'netns', U);
    ip('-n', C, 'link', 'set', 'dev0', 'address', mac);
    ip('-n', R, 'addr', 'add', `${lan}.1/24`, 'dev', 'lan');
    ip('-n', R, 'addr', 'add', `${wan}.1/24`, 'dev', 'wan');
    ip('-n', C, 'addr', 'add', `${deviceIp}/24`, 'dev', 'dev0');
    ip('-n', U, 'addr', 'add', `${upstreamIp}/24`, 'dev', 'up0');
    for (const [ns, dev] of [
      [R, 'lan'],
      [R, 'wan'],
      [R, 'lo'],
      [C, 'dev0'],
      [C, 'lo'],
      [U, 'up0'],
      [U, 'lo'],
    ] as const)
      ip('-n', ns, 'link', 'set', dev, 'up');
    ip('-n', C, 'route', 'add', 'default', 'via', `${lan}.1`);
    ip('-n', U, 'route', 'add', `${lan}.0/24`, 'via', `${wan}.1`);
    inRouter('sysctl', '-qw', 'net.ipv4.ip_forward=1');
  } catch (err) {
    close();
    throw err;
  }
  return {
    router: R,
    device: C,
    upstream: U,
    deviceIp,
    inRouter,
    startProbe: (port) => Probe.start(C, U, upstreamIp, port),
    close,
  };
}

const nodeIn = (ns: string, script: string, stdout: 'pipe' | 'ignore'): ChildProcess =>
  spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', stdout, 'ignore'] });

/**
 * The device's flow, told by sequence number: the sender numbers its datagrams from 0 and prints `s <n>` before it
 * sends each and `r <n>` for each echo it hears. Both come down one pipe in the order the sender saw them, so what is
 * counted here depends on what the sender sent and heard, not on when this process got round to reading it.
 */
export class Probe {
  /** The last datagram sent; -1 before the first. */
  sent = -1;
  /** The highest datagram echoed back; -1 before the first. */
  lastDelivered = -1;
  replies = 0;
  private readonly delivered = new Set<number>();
  private partial = '';

  private constructor(private readonly procs: ChildProcess[]) {}

  static start(device: string, upstream: string, upstreamIp: string, port: number): Probe {
    const echo = nodeIn(
      upstream,
      `const s = require('node:dgram').createSocket('udp4');` +
        `s.on('message', (m, r) => s.send(m, r.port, r.address)); s.bind(${port}, '${upstreamIp}');`,
      'ignore',
    );
    const send = nodeIn(
      device,
      `const s = require('node:dgram').createSocket('udp4'); s.on('error', () => {});` +
        `s.on('message', (m) => process.stdout.write('r ' + m + '\\n')); let n = 0;` +
        `setInterval(() => { process.stdout.write('s ' + n + '\\n');` +
        ` s.send(String(n++), ${port}, '${upstreamIp}'); }, 10);`,
      'pipe',
    );
    const p = new Probe([echo, send]);
    send.stdout!.on('data', (d: Buffer) => p.heard(d.toString()));
    return p;
  }

  private heard(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const n = Number(line.slice(2));
      if (line.startsWith('s ')) this.sent = n;
      else if (line.startsWith('r ')) {
        this.replies++;
        this.delivered.add(n);
        if (n > this.lastDelivered) this.lastDelivered = n;
      }
    }
  }

  /** The device's packets pass the router: one of the last PASSING_WITHIN datagrams sent was echoed back. */
  passing(): boolean {
    return this.lastDelivered >= 0 && this.sent - this.lastDelivered < PASSING_WITHIN;
  }

  /** The longest run of datagrams in `from`..`to` (sequence numbers, both included) that were not echoed back. */
  longestLoss(from: number, to: number): number {
    let longest = 0;
    let run = 0;
    for (let n = from; n <= to; n++) {
      run = this.delivered.has(n) ? 0 : run + 1;
      if (run > longest) longest = run;
    }
    return longest;
  }

  async stop(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
  }
}
