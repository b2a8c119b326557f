// The design the meter is measured against: everything on the main thread, written plainly. Per tick it
//  - fetches the snapshot over the same ndsctl.sock socket (chunks, concat, one utf8 string),
//  - JSON.parses all of it,
//  - accounts counter epochs per MAC in a Map of objects (same rules as src/meter/epochs.ts: first sighting is a base,
//    a lower reading / new token / return after absence starts a new epoch counted from 0),
//  - bills paying clients with the same purchase-baseline rule and applies the deltas through the same SessionsPort
//    call the Meter uses (SessionManager.applyUsage), builds the same per-tick UsageReport batch,
//  - and runs the same gate checks (paying clients absent or back unauthenticated).
// It does not slice its work across event-loop turns (JSON.parse cannot be sliced anyway).
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import type { MeteredSession, SessionsPort, UsageReport } from '../../src/meter/index.ts';
import { GATE_OPEN_STATES } from '../../src/portal/index.ts';

interface Epoch {
  down: number;
  up: number;
  token: string;
  state: string;
  seen: number;
}

const OPEN: ReadonlySet<string> = new Set(GATE_OPEN_STATES);

export class MainThreadJsonMeter {
  private readonly epochs = new Map<string, Epoch>();
  private readonly goneAt = new Map<string, number>();
  private readonly reopenedAt = new Map<string, number>();
  private tickNo = 0;
  private lastDispatchAt: number | undefined;
  constructor(
    private readonly socketPath: string,
    private readonly sessions: SessionsPort,
    private readonly onUsage: (batch: UsageReport[]) => void,
  ) {}

  stats(): Record<string, number> {
    return { ticks: this.tickNo, clients_tracked: this.epochs.size };
  }

  async tick(): Promise<{ clients: number; billed: number }> {
    const dispatchAt = Date.now();
    const text = await fetchText(this.socketPath);
    const doc = JSON.parse(text) as {
      client_list_length?: string;
      client_length?: number;
      clients: Record<string, Record<string, string | number>>;
    };
    const opennds = doc.client_list_length !== undefined;
    const unit = opennds ? 1024 : 1000;
    const [dk, uk] = opennds ? ['download_this_session', 'upload_this_session'] : ['downloaded', 'uploaded'];
    const tick = ++this.tickNo;
    const since = this.lastDispatchAt;
    this.lastDispatchAt = dispatchAt;
    const billed: Array<[string, number]> = [];
    const billedSessions: MeteredSession[] = [];
    const billedDown: number[] = [];
    const billedUp: number[] = [];
    let clients = 0;
    for (const [mac, c] of Object.entries(doc.clients)) {
      clients++;
      const down = Number(c[dk]) * unit;
      const up = Number(c[uk]) * unit;
      const token = String(c['token']);
      const state = String(c['state']);
      const e = this.epochs.get(mac);
      let usedDown = 0;
      let usedUp = 0;
      let previousState: string | undefined;
      if (e === undefined) this.epochs.set(mac, { down, up, token, state, seen: tick });
      else {
        previousState = e.seen === tick - 1 ? e.state : undefined;
        if (e.seen !== tick - 1 || e.token !== token || down < e.down || up < e.up) {
          usedDown = down;
          usedUp = up;
        } else {
          usedDown = down - e.down;
          usedUp = up - e.up;
        }
        e.down = down;
        e.up = up;
        e.token = token;
        e.state = state;
        e.seen = tick;
      }
      if (usedDown + usedUp <= 0) continue;
      const session = this.sessions.active(mac);
      if (session === undefined) continue;
      if (
        (since === undefined || since < session.startedAt) &&
        (previousState === undefined || OPEN.has(previousState))
      )
        continue;
      billed.push([mac, usedDown + usedUp]);
      billedSessions.push(session);
      billedDown.push(usedDown);
      billedUp.push(usedUp);
    }
    // The same sessions call as the Meter (SessionsPort.applyUsage, by session id).
    const remaining = new Float64Array(billed.length);
    if (billed.length > 0) {
      this.sessions.applyUsage(
        billedSessions.map((s) => s.id),
        Float64Array.from(billed, (b) => b[1]),
        billed.length,
        remaining,
      );
    }
    const usage: UsageReport[] = [];
    for (let b = 0; b < billed.length; b++) {
      const session = billedSessions[b]!;
      const remainingBytes = session.metric === 'bytes' ? remaining[b]! : Infinity;
      usage.push({
        mac: session.mac,
        sessionId: session.id,
        metric: session.metric,
        deltaBytes: billed[b]![1],
        deltaDownloadBytes: billedDown[b]!,
        deltaUploadBytes: billedUp[b]!,
        remainingBytes,
        exhausted: session.metric === 'bytes' && remainingBytes <= 0,
      });
    }
    if (usage.length > 0) this.onUsage(usage);
    const now = Date.now();
    for (const session of this.sessions.activeSessions()) {
      const e = this.epochs.get(session.mac);
      if (e === undefined || e.seen !== tick) {
        if (!this.goneAt.has(session.mac)) this.goneAt.set(session.mac, now);
        continue;
      }
      this.goneAt.delete(session.mac);
      if (e.state === 'Preauthenticated') {
        const last = this.reopenedAt.get(session.mac);
        if (last === undefined || now - last >= 5000) this.reopenedAt.set(session.mac, now);
      }
    }
    return { clients, billed: billed.length };
  }
}

function fetchText(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = createConnection({ path });
    s.on('connect', () => s.write('json\r\n\r\n'));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
  });
}

/**
 * The kernel path's baseline (`--designs kernel-json`): the same plain main-thread tick on nft's counter dump — run
 * the same nft command, JSON.parse all of it, pair each client's up and down counters, account epochs per MAC (a
 * new counter handle is a new epoch, counted from 0), bill and report as above. Gate checks need a listing, which the
 * kernel path reads only when something changed: none here, as in the worker's row between listings.
 */
export class MainThreadNftMeter {
  private readonly epochs = new Map<string, { down: number; up: number; handle: number; seen: number }>();
  private tickNo = 0;
  private lastDispatchAt: number | undefined;
  constructor(
    private readonly argv: readonly string[],
    private readonly sessions: SessionsPort,
    private readonly onUsage: (batch: UsageReport[]) => void,
  ) {}

  stats(): Record<string, number> {
    return { ticks: this.tickNo, clients_tracked: this.epochs.size };
  }

  async tick(): Promise<{ clients: number; billed: number }> {
    const dispatchAt = Date.now();
    const doc = JSON.parse(await runText(this.argv)) as { nftables: Array<Record<string, Record<string, unknown>>> };
    const tick = ++this.tickNo;
    const since = this.lastDispatchAt;
    this.lastDispatchAt = dispatchAt;
    const pairs = new Map<string, { up?: [number, number]; down?: [number, number] }>();
    for (const item of doc.nftables) {
      const c = item['counter'];
      if (c === undefined || c['table'] !== 'sluice_count') continue;
      const name = String(c['name']);
      const hex = name.slice(3);
      const pair = pairs.get(hex) ?? {};
      pair[name.startsWith('cu_') ? 'up' : 'down'] = [Number(c['handle']), Number(c['bytes'])];
      pairs.set(hex, pair);
    }
    const billedSessions: MeteredSession[] = [];
    const deltas: number[] = [];
    const downs: number[] = [];
    const ups: number[] = [];
    for (const [hex, { up, down }] of pairs) {
      if (up === undefined || down === undefined) continue;
      const mac = hex.replace(/(..)(?!$)/g, '$1:');
      const e = this.epochs.get(mac);
      let usedDown = 0;
      let usedUp = 0;
      if (e === undefined) this.epochs.set(mac, { down: down[1], up: up[1], handle: down[0], seen: tick });
      else {
        if (e.handle !== down[0] || down[1] < e.down || up[1] < e.up) {
          usedDown = down[1];
          usedUp = up[1];
        } else {
          usedDown = down[1] - e.down;
          usedUp = up[1] - e.up;
        }
        e.down = down[1];
        e.up = up[1];
        e.handle = down[0];
        e.seen = tick;
      }
      if (usedDown + usedUp <= 0) continue;
      const session = this.sessions.active(mac);
      if (session === undefined || since === undefined || since < session.startedAt) continue;
      billedSessions.push(session);
      deltas.push(usedDown + usedUp);
      downs.push(usedDown);
      ups.push(usedUp);
    }
    const remaining = new Float64Array(deltas.length);
    if (deltas.length > 0)
      this.sessions.applyUsage(
        billedSessions.map((s) => s.id),
        Float64Array.from(deltas),
        deltas.length,
        remaining,
      );
    const usage: UsageReport[] = [];
    for (let b = 0; b < deltas.length; b++) {
      const session = billedSessions[b]!;
      const remainingBytes = session.metric === 'bytes' ? remaining[b]! : Infinity;
      usage.push({
        mac: session.mac,
        sessionId: session.id,
        metric: session.metric,
        deltaBytes: deltas[b]!,
        deltaDownloadBytes: downs[b]!,
        deltaUploadBytes: ups[b]!,
        remainingBytes,
        exhausted: session.metric === 'bytes' && remainingBytes <= 0,
      });
    }
    if (usage.length > 0) this.onUsage(usage);
    return { clients: pairs.size, billed: deltas.length };
  }
}

function runText(argv: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`${argv[0]} exited ${code}`)),
    );
  });
}
