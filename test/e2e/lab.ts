/**
 * TypeScript side of the e2e lab (test/e2e/lab.sh does the namespaces): bring it up and down, run things in the
 * clients, read what passed (upstream server's acked bytes, clients' IP-level counters) and what openNDS says.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_NUDGE, nudgeWhileSilent, type NudgePolicy } from '../../src/portal/accept-nudge.ts';
import { NdsctlRunner } from '../../src/portal/index.ts';
import { exitOnSignals, onProcessExit } from './exit-cleanup.ts';

/**
 * The harness's nudges of the portal's accept queue go blind (accept-nudge.ts: 1, 3, 7, 15, 31 s of silence): it
 * cannot see the queue. The kernel lists a connection not yet accepted in the connecting process's network namespace
 * (the host's, here) and the listener in the router's: the router's /proc/<pid>/net/unix showed the listener with no
 * waiting connection while `ss` counted one (a nudger that looked there never nudged), and the host's lists the
 * waiting connections of every lab under the same name, /tmp/ndsctl.sock.
 */
const BLIND_NUDGE: Omit<NudgePolicy, 'onNudge'> = { ...DEFAULT_NUDGE, readQueue: () => Promise.resolve(undefined) };

export const E2E_DIR = fileURLToPath(new URL('.', import.meta.url));
export const LAB_SH = join(E2E_DIR, 'lab.sh');
export const UPSTREAM_IP = '10.77.1.2';
export const ROUTER_LAN_IP = '10.77.0.1';
export const MiB = 1024 * 1024;
/** A veth's counters count each frame's Ethernet header (no FCS); the portal and sluice count from the IP header. */
const ETHERNET_HEADER_BYTES = 14;
/** The least time between two of the harness's reads of a client's portal state (Lab.portalClient). */
export const PORTAL_READ_SPACING_MS = 250;

export interface Client {
  index: number;
  ns: string;
  mac: string;
  ip: string;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Client i's MAC, as lab.sh gives it (02:00:00:00:0c:01 … 0c:63). */
export function clientMac(i: number): string {
  return `02:00:00:00:0c:${i.toString(16).padStart(2, '0')}`;
}

export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * MiB, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : null
        : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The lab's portal is openNDS 10.3.1 (what OpenWrt ships) rather than Debian's 9.10: set by the opennds10-*.test.ts
 * files (SLUICE_E2E_LAB_PORTAL=opennds10), or for any lab file by hand. Where it is installed (`make install
 * DESTDIR=…` of its public source, built outside the repo): SLUICE_E2E_OPENNDS_PREFIX, else the well-known cache path.
 */
export const OPENNDS10 = process.env['SLUICE_E2E_LAB_PORTAL'] === 'opennds10';
/** SLUICE_LAB_BINAUTH=1: every lab's openNDS 9.10 runs the package's BinAuth too (lab.sh --binauth). */
export const LAB_BINAUTH = process.env['SLUICE_LAB_BINAUTH'] === '1';
const OPENNDS10_CACHE = join(homedir(), '.cache', 'sluice-peers', 'opennds-10.3.1');
export const OPENNDS10_PREFIX = process.env['SLUICE_E2E_OPENNDS_PREFIX'] || OPENNDS10_CACHE;

/** Why the openNDS 10.3.1 lab cannot run (no build at its prefix), or null. */
export function opennds10UnavailableReason(): string | null {
  try {
    accessSync(join(OPENNDS10_PREFIX, 'usr', 'bin', 'opennds'), constants.X_OK);
    accessSync(join(OPENNDS10_PREFIX, 'usr', 'bin', 'ndsctl'), constants.X_OK);
    return null;
  } catch {
    return (
      `no openNDS 10.3.1 installed under ${OPENNDS10_PREFIX} (build it from its public source outside the repo, ` +
      '`make install DESTDIR=<dir>`, and set SLUICE_E2E_OPENNDS_PREFIX=<dir>)'
    );
  }
}

/** Why the lab cannot run here, or null when it can. */
export function labUnavailableReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces need root)';
  const tools: Record<string, string> = {
    ip: 'iproute2',
    nsenter: 'util-linux',
    unshare: 'util-linux',
    opennds: 'opennds',
    ndsctl: 'opennds',
    dnsmasq: 'dnsmasq-base',
    busybox: 'busybox',
    nft: 'nftables',
    'iptables-nft': 'iptables',
    'iptables-translate': 'iptables',
    curl: 'curl',
    tc: 'iproute2',
    ss: 'iproute2',
  };
  const missing = Object.entries(tools).filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0);
  if (missing.length) return `missing ${missing.map(([b, p]) => `${b} (${p})`).join(', ')}`;
  const probe = `sl-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `ip netns does not work here: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

export interface LabOptions {
  /** tbf rate on the uplink (before the gate); null = unshaped */
  rate?: string | null;
  /** a nodogsplash binary (a local build, ndsctl next to it) to run as the portal instead of openNDS */
  nodogsplash?: string;
  /** no portal daemon: sluice is the gate (`main.portal 'sluice'`, lab.sh --sluice) */
  sluice?: boolean;
  /** client namespaces (lab.sh --clients; default 4, at most 99) */
  clients?: number;
  /** openNDS shows sluice's ThemeSpec splash, pointing at the pay page on this `host:port` (sluice.http.listen) */
  theme?: string;
  /** with `theme`: the router is in venue (lab.sh --venue): the ThemeSpec claims the sessions of devices it meets */
  venue?: string;
  /**
   * A `ubus` on openNDS's PATH (lab.sh --ubus): sluice's ubus CLI from this bundle (sluice.mjs) on the bus at
   * `ubusSocket`, where Sluice.start then runs its ubusd. Debian's openNDS only.
   */
  ubus?: string;
  /** more TCP ports clients may reach on the router before authentication (lab.sh --allow-port: TollGate's door) */
  allowPorts?: number[];
  /** the portal is the openNDS 10.x installed under this prefix (lab.sh --opennds-prefix), not Debian's 9.10 */
  openndsPrefix?: string;
  /** dual-stack (lab.sh --ipv6): ULA addresses, IPv6 forwarding on */
  ipv6?: boolean;
  /** Debian's openNDS 9.10 runs the package's BinAuth (lab.sh --binauth); openNDS 10.x always does */
  binauth?: boolean;
  /** the hotspot's bridge (lab.sh --bridge; default br-lan): another name leaves an empty br-lan beside it */
  bridge?: string;
  /**
   * the last client is on this second hotspot device outside the bridge (lab.sh --second-device), its address static
   */
  secondDevice?: string;
  /**
   * DHCP options the router's dnsmasq sends, each as /etc/config/dhcp's `dhcp_option` holds it (lab.sh --dhcp-option)
   */
  dhcpOptions?: string[];
}

export interface FetchResult {
  /** curl's exit code (0 ok, 28 timed out, 63 max filesize, 7 refused…) */
  exit: number | null;
  http: number;
  bytes: number;
  redirect: string;
  /** wall-clock ms when curl finished */
  endedAt: number;
}

export class Lab {
  readonly dir: string;
  readonly id: string;
  readonly upNs: string;
  readonly rtNs: string;
  readonly clients: Client[];
  /** the argv[0] for sluice's `list ndsctl`: runs ndsctl inside this lab's router */
  readonly ndsctlPath: string;
  /** which portal gates the lab (`main.portal`) */
  readonly portal: 'opennds' | 'nodogsplash' | 'sluice';
  /** the portal's `checkinterval`, in seconds, as lab.sh wrote it */
  readonly checkinterval: number;
  /** the bus openNDS's scripts reach with `ubus` (lab.sh --ubus), null when they have none */
  readonly ubusSocket: string | null;
  private downed = false;
  /** Takes back the exit cleanup that brings the lab down (the lab went down on its own). */
  private forgetExit: () => void = () => undefined;
  private lastPortalReadAt = 0;

  private constructor(dir: string) {
    this.dir = dir;
    const env = Object.fromEntries(
      readFileSync(join(dir, 'lab.env'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1).replace(/^"|"$/g, '')];
        }),
    ) as Record<string, string>;
    this.id = env.ID ?? '';
    this.upNs = env.UP ?? '';
    this.rtNs = env.RT ?? '';
    this.clients = (env.CLIENTS ?? '')
      .split(' ')
      .filter(Boolean)
      .map((ns, i) => ({
        index: i + 1,
        ns,
        mac: clientMac(i + 1),
        ip: `10.77.0.${100 + i + 1}`,
      }));
    this.ndsctlPath = join(dir, 'ndsctl');
    this.portal = env.PORTAL === 'nodogsplash' || env.PORTAL === 'sluice' ? env.PORTAL : 'opennds';
    this.checkinterval = Number(env.CHECKINTERVAL);
    this.ubusSocket = env.UBUS_SOCKET || null;
  }

  /** Removes labs left by runs that died, then brings a new one up. Tears it down on process exit. */
  static async up(opts: LabOptions = {}): Promise<Lab> {
    await run(LAB_SH, ['cleanup-stale'], 60_000);
    const args = ['up', '--owner', String(process.pid)];
    if (opts.rate === null) args.push('--no-shape');
    else if (opts.rate !== undefined) args.push('--rate', opts.rate);
    if (opts.nodogsplash !== undefined) args.push('--nodogsplash', opts.nodogsplash);
    if (opts.sluice === true) args.push('--sluice');
    if (opts.theme !== undefined) args.push('--theme', opts.theme);
    if (opts.venue !== undefined) args.push('--venue', opts.venue);
    if (opts.ubus !== undefined) args.push('--ubus', opts.ubus);
    if (opts.clients !== undefined) args.push('--clients', String(opts.clients));
    for (const port of opts.allowPorts ?? []) args.push('--allow-port', String(port));
    if (opts.ipv6 === true) args.push('--ipv6');
    if (opts.binauth === true) args.push('--binauth');
    if (opts.bridge !== undefined) args.push('--bridge', opts.bridge);
    if (opts.secondDevice !== undefined) args.push('--second-device', opts.secondDevice);
    for (const option of opts.dhcpOptions ?? []) args.push('--dhcp-option', option);
    const openndsPrefix =
      opts.openndsPrefix ?? (OPENNDS10 && opts.nodogsplash === undefined ? OPENNDS10_PREFIX : undefined);
    if (openndsPrefix !== undefined) args.push('--opennds-prefix', openndsPrefix);
    const r = await run(LAB_SH, args, 120_000 + (opts.clients ?? 4) * 2000);
    const dir = r.stdout.trim().split('\n').pop() ?? '';
    if (r.code !== 0 || !dir || !existsSync(join(dir, 'lab.env'))) {
      throw new Error(`lab up failed (exit ${r.code}):\n${r.stderr}`);
    }
    const lab = new Lab(dir);
    // Last resort if the test dies: spawnSync works inside an exit handler.
    lab.forgetExit = onProcessExit(() => {
      if (!lab.downed) spawnSync(LAB_SH, ['down', dir], { stdio: 'ignore' });
    });
    exitOnSignals();
    return lab;
  }

  async down(): Promise<void> {
    if (this.downed) return;
    this.downed = true;
    this.forgetExit();
    const r = await run(LAB_SH, ['down', this.dir], 60_000);
    if (r.code !== 0) process.stderr.write(`lab down: ${r.stderr}\n`);
  }

  /**
   * The portal's control socket as a process outside the router's private mount namespace reaches it: through the
   * anchor's root (/proc/<pid>/root), so sluice (started with `ip netns exec`, which does not enter that mount
   * namespace) speaks the socket like on a router instead of spawning the ndsctl wrapper.
   */
  get portalSocketPath(): string {
    return this.routerTmp('ndsctl.sock');
  }

  /** A file in the router's private /tmp, reached through the anchor's root as portalSocketPath is. */
  routerTmp(name: string): string {
    return `/proc/${readFileSync(join(this.dir, 'anchor.pid'), 'utf8').trim()}/root/tmp/${name}`;
  }

  /**
   * The portal's version as it says it: openNDS writes `version=` to ndscids/ndsinfo on its tmpfs at start (no call to
   * it); nodogsplash answers `ndsctl status`.
   */
  async portalVersion(): Promise<string> {
    if (this.portal === 'opennds') {
      try {
        const info = readFileSync(this.routerTmp('ndscids/ndsinfo'), 'utf8');
        return /version=(\S+)/.exec(info)?.[1] ?? '?';
      } catch {
        return '?';
      }
    }
    return /Version:\s*(\S+)/i.exec((await this.ndsctl('status')).stdout)?.[1] ?? '?';
  }

  client(index: number): Client {
    const c = this.clients[index - 1];
    if (!c) throw new Error(`no client ${index}`);
    return c;
  }

  /**
   * ndsctl in the router; retried while openNDS answers "busy" (exit 4: someone else — sluice — holds the lock). While
   * it runs, its connection is nudged out of the portal's accept queue (BLIND_NUDGE), as sluice's calls are: the
   * portal accepts one connection per wake-up, so once two callers met (the harness's reads, openNDS's own scripts'
   * ndsctl, sluice), every later connection waits for the next caller. Without it, the data baseline's auth sat in
   * openNDS 10.3.1's queue, never accepted, in most full runs (`ss -xl` in the router: Recv-Q 1 for good).
   */
  async ndsctl(...args: string[]): Promise<Run> {
    for (let attempt = 0; ; attempt++) {
      const nudger = nudgeWhileSilent(this.portalSocketPath, BLIND_NUDGE);
      // A hang guard like waitFor's (GUARD_FACTOR); a call killed at the bound ends with no exit code.
      const r = await run(this.ndsctlPath, args, 10_000 * GUARD_FACTOR).finally(() => nudger.stop());
      if (r.code !== 4 || attempt >= 40) return r;
      await sleep(50 + Math.random() * 50);
    }
  }

  /**
   * One client as the portal's `json <mac>` shows it, null when it does not list it, undefined when unreadable. Not
   * the whole list: openNDS runs a script per listed client for json, and each one widens the window of the SIGCHLD
   * race that makes openNDS 9.x exit (docs/captive-portal.md "Portal restarts"); the harness's waits poll this.
   */
  async portalClient(mac: string): Promise<Record<string, string> | null | undefined> {
    // And at most one read every PORTAL_READ_SPACING_MS, however tight a wait's loop: the waits are the harness's
    // busiest caller of openNDS (each read through nsenter is ~0.6 s; back to back they kept its ndsctl thread running
    // scripts most of the time).
    const wait = this.lastPortalReadAt + PORTAL_READ_SPACING_MS - Date.now();
    if (wait > 0) await sleep(wait);
    this.lastPortalReadAt = Date.now();
    const stdout = await this.portalJson(mac);
    if (stdout === undefined) return undefined;
    try {
      const client = JSON.parse(stdout) as Record<string, string>;
      return Object.keys(client).length === 0 ? null : client;
    } catch {
      return undefined;
    }
  }

  /**
   * `json <mac>` over openNDS's control socket with sluice's runner and its nudges: openNDS accepts one connection per
   * wake-up, so once calls arrived together a plain ndsctl waited for the next caller and timed out, and every look of
   * a wait after it did too (src/portal/accept-nudge.ts). nodogsplash's lab keeps the ndsctl command.
   */
  private async portalJson(mac: string): Promise<string | undefined> {
    if (this.portal !== 'opennds') {
      const r = await this.ndsctl('json', mac);
      return r.code === 0 ? r.stdout : undefined;
    }
    const runner = new NdsctlRunner({
      command: [this.ndsctlPath],
      socketPath: () => this.portalSocketPath,
      timeoutMs: 10_000,
      nudge: BLIND_NUDGE,
    });
    try {
      return (await runner.run(['json', mac])).stdout;
    } catch {
      return undefined;
    } finally {
      await runner.destroy();
    }
  }

  /**
   * Whether openNDS's firewall lets `mac` out: its mark rule for the client in the mangle chain ndsOUT (9.10 through
   * iptables-nft in `ip mangle`, 10.3.1 in its own `ip nds_mangle`; src/fw_iptables.c `iptables_fw_authenticate`).
   * That rule is the gate itself, read from the kernel without asking openNDS: every `ndsctl json` runs a script in
   * openNDS's ndsctl thread, and one that meets the main loop's gateway check makes openNDS 9.10 exit
   * (docs/captive-portal.md "Portal restarts"). Undefined when neither chain can be read.
   */
  /**
   * Whether sluice's own gate lets `mac` pass over IPv4: its MAC in the gate's `paid` set of MAC and address
   * (src/portal/own-gate-nft.ts). No portal lists devices there: every device is "Preauthenticated" until it passes.
   */
  async ownGatePasses(mac: string): Promise<boolean> {
    const r = await run('ip', ['netns', 'exec', this.rtNs, 'nft', 'list', 'set', 'inet', 'sluice_portal', 'paid']);
    return r.code === 0 && r.stdout.toLowerCase().includes(mac.toLowerCase());
  }

  /** What an unpaid device's HTTP to the internet gets: openNDS's and nodogsplash's 307 splash, sluice's own 302. */
  get unpaidHttpStatus(): number {
    return this.portal === 'sluice' ? 302 : 307;
  }

  async gateRule(mac: string): Promise<boolean | undefined> {
    for (const table of ['mangle', 'nds_mangle']) {
      const r = await run('ip', ['netns', 'exec', this.rtNs, 'nft', 'list', 'chain', 'ip', table, 'ndsOUT']);
      if (r.code === 0) return r.stdout.toLowerCase().includes(`ether saddr ${mac.toLowerCase()} `);
    }
    return undefined;
  }

  /**
   * The client's state in the portal: 'Authenticated' straight from the firewall while openNDS's rule lets it out (no
   * call to openNDS), otherwise openNDS's own word (`json <mac>`: Preauthenticated, absent, …).
   */
  async portalState(mac: string): Promise<string> {
    if (this.portal === 'sluice') return (await this.ownGatePasses(mac)) ? 'Authenticated' : 'Preauthenticated';
    if (this.portal === 'opennds' && (await this.gateRule(mac)) === true) return 'Authenticated';
    const client = await this.portalClient(mac);
    if (client === undefined) return 'unreadable';
    return client?.state ?? 'absent';
  }

  /** Per client IP: bytes the upstream sent (handed to its kernel) and that the client's TCP acknowledged. */
  async upstreamStats(): Promise<Record<string, { requests: number; sent: number; acked: number; open: number }>> {
    const r = await run('ip', [
      'netns',
      'exec',
      this.upNs,
      'curl',
      '-sf',
      '--max-time',
      '5',
      'http://127.0.0.1/__stats',
    ]);
    if (r.code !== 0) throw new Error(`upstream stats: curl exit ${r.code}`);
    return (
      JSON.parse(r.stdout) as {
        clients: Record<string, { requests: number; sent: number; acked: number; open: number }>;
      }
    ).clients;
  }

  async upstreamAcked(client: Client): Promise<number> {
    return (await this.upstreamStats())[client.ip]?.acked ?? 0;
  }

  async upstreamRequests(client: Client): Promise<number> {
    return (await this.upstreamStats())[client.ip]?.requests ?? 0;
  }

  /** IP-level bytes the client exchanged with the upstream (nft counters in the client namespace). */
  async clientIpBytes(client: Client, direction: 'from_upstream' | 'to_upstream' = 'from_upstream'): Promise<number> {
    return nftCounter(client.ns, direction);
  }

  /** IP-level bytes of the client's packets that reached the upstream (nft counter in the upstream namespace). */
  async upstreamIpFrom(client: Client): Promise<number> {
    return nftCounter(this.upNs, `from_c${client.index}`);
  }

  /**
   * IPv4 bytes the client exchanged over its link, both ways, with anyone (the upstream, and the router itself: the
   * pay page, DNS): its interface's counters less the Ethernet headers, i.e. what sluice's kernel counters bill (they
   * count the router's own answers too, docs/captive-portal.md "Kernel counters"), where passed().clientView counts
   * only the traffic with the upstream.
   */
  async linkIpBytes(client: Client): Promise<number> {
    const files = ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets'].map(
      (f) => `/sys/class/net/eth0/statistics/${f}`,
    );
    const r = await run('ip', ['netns', 'exec', client.ns, 'cat', ...files]);
    const [rxBytes, txBytes, rxPackets, txPackets] = r.stdout.trim().split(/\s+/).map(Number);
    const total = rxBytes! + txBytes! - ETHERNET_HEADER_BYTES * (rxPackets! + txPackets!);
    if (r.code !== 0 || !Number.isFinite(total)) throw new Error(`link counters of ${client.ns}: ${r.stderr}`);
    return total;
  }

  /**
   * Everything that passed the gate for `client`, both ways, at openNDS's level (IP bytes), as seen from the
   * upstream: download = acknowledged TCP payload + IP/TCP headers (ipBytesForPayload), upload = the IP bytes
   * of the client's packets that arrived. And the same from the client's own counters, as a cross-check.
   */
  async passed(client: Client): Promise<{ ackedPayload: number; upstreamView: number; clientView: number }> {
    const [ackedPayload, upIn, cIn, cOut] = await Promise.all([
      this.upstreamAcked(client),
      this.upstreamIpFrom(client),
      this.clientIpBytes(client, 'from_upstream'),
      this.clientIpBytes(client, 'to_upstream'),
    ]);
    return { ackedPayload, upstreamView: ipBytesForPayload(ackedPayload) + upIn, clientView: cIn + cOut };
  }

  private curlArgs(client: Client, path: string, maxTimeS: number, out: string): string[] {
    return [
      'netns',
      'exec',
      client.ns,
      'curl',
      '-s',
      '-o',
      out,
      '--max-time',
      String(maxTimeS),
      '--connect-timeout',
      String(Math.min(maxTimeS, 3)),
      '--max-filesize',
      String(64 * MiB),
      '-w',
      '%{http_code} %{size_download} %{redirect_url}',
      `http://${UPSTREAM_IP}${path}`,
    ];
  }

  /** One bounded HTTP GET from a client to the upstream. */
  async fetch(client: Client, path: string, maxTimeS = 3): Promise<FetchResult> {
    const r = await run('ip', this.curlArgs(client, path, maxTimeS, '/dev/null'), (maxTimeS + 5) * 1000);
    return parseCurl(r, Date.now());
  }

  /** A download in the background, written to `file` so its progress can be watched. */
  download(client: Client, path: string, file: string, maxTimeS: number): Download {
    const child = spawn('ip', this.curlArgs(client, path, maxTimeS, file), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const done = new Promise<FetchResult>((resolve) => {
      child.on('close', (code) => resolve(parseCurl({ code, stdout, stderr: '' }, Date.now())));
    });
    return {
      done,
      received: () => {
        try {
          return statSync(file).size;
        } catch {
          return 0;
        }
      },
      kill: () => {
        if (child.exitCode === null) child.kill('SIGKILL');
      },
    };
  }

  /**
   * What a customer does before buying: open a web page, get the portal's redirect. openNDS lists a client only
   * once it has seen traffic from it, and sluice opens the gate only for a client the portal lists.
   */
  async visitPortal(client: Client): Promise<void> {
    // sluice's own gate lists no device: it knows every device on the LAN from the router's neighbour table.
    if (this.portal === 'sluice') return;
    // 10.3.1 spends ≈ 0.5 s of CPU on each splash-page visit, and it lists the client before it answers
    // (src/http_microhttpd.c): a visit waits up to 5 s for that answer rather than giving up while the portal works.
    const seen = new Map<string, number>();
    let last: FetchResult | undefined;
    await waitFor(
      `openNDS to list ${client.mac}`,
      20_000,
      async () => {
        const state = await this.portalState(client.mac);
        if (state === 'Preauthenticated' || state === 'Authenticated') return true;
        seen.set(state, (seen.get(state) ?? 0) + 1);
        last = await this.fetch(client, '/ping', 5);
        return undefined;
      },
      100,
    ).catch(async (err: Error) => {
      // What the portal said and what the visits got, and the router's view of the client: why it was not listed.
      const neigh = (await run('ip', ['-n', this.rtNs, 'neigh', 'show', client.ip])).stdout.trim();
      let lease = '';
      try {
        const leases = readFileSync(this.routerTmp('dhcp.leases'), 'utf8');
        lease = leases.split('\n').find((l) => l.toLowerCase().includes(client.mac.toLowerCase())) ?? 'none';
      } catch (e) {
        lease = `unreadable: ${(e as Error).message}`;
      }
      throw new Error(
        `${err.message}; portal states ${JSON.stringify(Object.fromEntries(seen))}; last visit ` +
          `${JSON.stringify(last)}; router neigh "${neigh}"; lease "${lease}"`,
      );
    });
  }

  async stopOpennds(): Promise<void> {
    const r = await run(LAB_SH, ['opennds-stop', this.dir], 30_000);
    if (r.code !== 0) throw new Error(`opennds-stop: ${r.stderr}`);
  }

  async startOpennds(): Promise<void> {
    const r = await run(LAB_SH, ['opennds-start', this.dir], 60_000);
    if (r.code !== 0) throw new Error(`opennds-start: ${r.stderr}`);
  }

  /**
   * The portal frozen (SIGSTOP) or thawed (SIGCONT): alive, its firewall rules in place, answering nothing, as a
   * portal that hangs or died without taking its rules down (openNDS 10.3.1 and 9.10 after a crash) looks to sluice.
   */
  freezePortal(frozen: boolean): void {
    const pid = Number(readFileSync(join(this.dir, 'opennds.pid'), 'utf8').trim());
    process.kill(pid, frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /** How often the lab's supervisor started the portal again after an exit nobody asked for (lab.sh supervise). */
  portalRespawns(): number {
    try {
      return Number(readFileSync(join(this.dir, 'respawns'), 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  }

  /** When (ms since the epoch) each of those exits happened. */
  portalRespawnTimes(): number[] {
    try {
      return readFileSync(join(this.dir, 'respawn-times'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map(Number);
    } catch {
      return [];
    }
  }

  /**
   * The supervisor's own lines in opennds.log (an exit nobody asked for, with its status), wherever they are: a
   * restarted portal prints dozens of start-up lines after them, past a log tail, and test/run.mjs reruns a file whose
   * portal died of SIGFPE only when its output says so.
   */
  portalExits(): string[] {
    try {
      return readFileSync(join(this.dir, 'opennds.log'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('[lab] '));
    } catch {
      return [];
    }
  }

  logTail(name: string, lines = 40): string {
    try {
      return readFileSync(join(this.dir, name), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return `(no ${name})`;
    }
  }
}

export interface Download {
  done: Promise<FetchResult>;
  /** bytes written to the output file so far */
  received(): number;
  kill(): void;
}

async function nftCounter(ns: string, name: string): Promise<number> {
  const r = await run('ip', ['netns', 'exec', ns, 'nft', 'list', 'counter', 'ip', 'lab', name]);
  const m = /bytes (\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`nft counter ${name} in ${ns}: ${r.stderr}`);
  return Number(m[1]);
}

function parseCurl(r: Run, endedAt: number): FetchResult {
  const [http, bytes, redirect] = r.stdout.trim().split(' ');
  return { exit: r.code, http: Number(http) || 0, bytes: Number(bytes) || 0, redirect: redirect ?? '', endedAt };
}

/**
 * A wait's bound is a hang guard, not a speed check (timing goals live in bench/): each caller's figure is what the
 * step takes on an idle machine with room to spare, times this on a busy one (the lab beside the other test files,
 * or at load 4 and more: at load ~37 openNDS took 2.6 s to authenticate a client, and a 10 s wait for a gate ran out).
 */
export const GUARD_FACTOR = Number(process.env.SLUICE_E2E_GUARD_FACTOR ?? 3);

/** Polls `probe` every `everyMs` until it gives a value (not undefined); throws after timeoutMs × GUARD_FACTOR. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  everyMs = 200,
): Promise<T> {
  const bound = timeoutMs * GUARD_FACTOR;
  const deadline = Date.now() + bound;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${bound} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * IP-level bytes for a TCP payload, as openNDS counts them: every full-size segment carries 20 bytes of IP and
 * 32 of TCP header (timestamps on), MSS 1448 on this 1500-byte link. Handshake/ACK-only packets add a few hundred.
 */
export function ipBytesForPayload(payload: number, mss = 1448, headers = 52): number {
  return payload + Math.ceil(payload / mss) * headers;
}

export const fmt = (bytes: number): string => `${bytes} B (${(bytes / 1024).toFixed(1)} KiB)`;
export const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

/**
 * curl in the client downloads for `seconds`: the body's bytes over the time from the first byte to the last, in
 * bit/s (the goodput a speed tier gives the customer's application: rates.test.ts, trial.test.ts).
 */
export async function downloadGoodput(c: Client, seconds: number): Promise<number> {
  const r = await run(
    'ip',
    [
      'netns',
      'exec',
      c.ns,
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '--max-time',
      String(seconds),
      '-w',
      '%{size_download} %{time_total} %{time_starttransfer}',
      'http://10.77.1.2/bytes/60000000',
    ],
    (seconds + 10) * 1000,
  );
  const [size, total, start] = r.stdout.trim().split(' ').map(Number) as [number, number, number];
  return (size * 8) / (total - start);
}
