/**
 * Shared setup for MQTT tests (their sink's config: mqtt-config.ts): a recording subscriber on a real mosquitto,
 * synthetic session events.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../src/log.ts';
import { decode, loadMsgpack } from '../../src/upstream/mqtt/messages.ts';
import type { SessionFigures, SinkEvent } from '../../src/upstream/sink.ts';
import type { UsageReport } from '../../src/meter/ports.ts';
import type { Session } from '../../src/sessions/model.ts';

// msgpackr is read when the MQTT sink opens its queue (messages.ts); this file decodes without a sink.
await loadMsgpack();

export function tempDir(prefix = 'sluice-mqtt-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function recordingLog(lines: string[]): Logger {
  const log = createLogger();
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    log[level] = (msg, fields) => {
      lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
    };
  }
  return log;
}

export interface Received {
  topic: string;
  body: Record<string, unknown>;
  bytes: number;
  retain: boolean;
  contentType: string | undefined;
  expiry: number | undefined;
}

/** A subscriber to `<prefix>/#` that decodes every message. `persistent`: a fixed client id with clean=false. */
export class Subscriber {
  readonly messages: Received[] = [];
  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, options: IClientOptions & { topic?: string } = {}): Promise<Subscriber> {
    // mqtt.js loaded here, by the files that subscribe: the fast files that take only rows() or fakeSession() from
    // this rig would each pay its import (~0.16 s of CPU in a thread).
    const { default: mqtt } = await import('mqtt');
    const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200, ...options });
    const sub = new Subscriber(client);
    client.on('message', (topic, payload, packet) => {
      let body: Record<string, unknown>;
      try {
        body = decode(payload) as Record<string, unknown>;
      } catch {
        body = { undecodable: payload.toString() };
      }
      sub.messages.push({
        topic,
        body,
        bytes: payload.length,
        retain: packet.retain,
        contentType: packet.properties?.contentType,
        expiry: packet.properties?.messageExpiryInterval,
      });
    });
    await client.subscribeAsync(options.topic ?? 'sluice/#', { qos: 1 });
    return sub;
  }

  on(suffix: string): Received[] {
    return this.messages.filter((m) => m.topic.endsWith(`/${suffix}`));
  }

  /** Sequence numbers of usage and session messages, in arrival order. */
  seqs(): number[] {
    return this.messages.filter((m) => /\/(usage|session)$/.test(m.topic)).map((m) => m.body['seq'] as number);
  }

  async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${this.messages.length} messages)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}

/** Counts for a run of sequence numbers: what a consumer that deduplicates by seq sees. */
export function seqReport(seqs: readonly number[], first: number, last: number) {
  const seen = new Set<number>();
  let duplicated = 0;
  const duplicates: number[] = [];
  let outOfOrder = 0;
  let prev = 0;
  for (const s of seqs) {
    if (s < first || s > last) continue;
    if (seen.has(s)) {
      duplicated++;
      duplicates.push(s);
      continue;
    }
    if (s < prev) outOfOrder++;
    prev = s;
    seen.add(s);
  }
  const missing: number[] = [];
  for (let s = first; s <= last; s++) if (!seen.has(s)) missing.push(s);
  return { produced: last - first + 1, delivered: seen.size, duplicated, duplicates, outOfOrder, missing };
}

let n = 0;
export function fakeSession(overrides: Partial<Session> = {}): Session {
  n++;
  return {
    id: (0x1000 + n).toString(16).padStart(16, '0'),
    mac: `02:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
    ip: '10.0.0.2',
    user: null,
    plan: 'data',
    metric: 'bytes',
    allotment: 10_000_000n,
    used: 0,
    bytes: 0,
    createdAt: 1000,
    startedAt: 1000,
    expiresAt: null,
    endedAt: null,
    state: 'ACTIVE',
    endCause: null,
    payments: [{ method: 'grant', reference: `g-${n}`, amount: 0n, asset: '', at: 1000 }],
    ...overrides,
  };
}

/** A usage event for `sessions`, each with `delta` bytes (down 3/4, up 1/4), figures from the map. */
export function usageEvent(sessions: readonly Session[], delta: number, at = Date.now()): SinkEvent {
  const figures = new Map<string, SessionFigures>();
  const usage: UsageReport[] = sessions.map((s) => {
    s.used += delta;
    s.bytes += delta;
    figures.set(s.id, {
      user: s.user,
      metric: s.metric,
      allotment: s.allotment,
      used: BigInt(s.used),
      remaining: s.allotment - BigInt(s.used),
      bytes: BigInt(s.bytes),
      state: s.state,
    });
    const up = Math.floor(delta / 4);
    return {
      mac: s.mac,
      sessionId: s.id,
      metric: s.metric,
      deltaBytes: delta,
      deltaDownloadBytes: delta - up,
      deltaUploadBytes: up,
      remainingBytes: Number(s.allotment) - s.used,
      exhausted: false,
    };
  });
  return {
    type: 'usage',
    at,
    usage,
    figures: (id) => figures.get(id) ?? null,
    figuresInto: (id, out) => {
      const f = figures.get(id);
      if (!f) return false;
      Object.assign(out, {
        user: f.user,
        state: f.state,
        bytes: Number(f.bytes),
        used: Number(f.used),
        allotment: Number(f.allotment),
        remaining: Number(f.remaining),
      });
      return true;
    },
  };
}

/** Rows of a decoded usage message as objects keyed by its `fields`. */
export function rows(body: Record<string, unknown>): Array<Record<string, unknown>> {
  const fields = body['fields'] as string[];
  return (body['sessions'] as unknown[][]).map((r) => Object.fromEntries(fields.map((f, i) => [f, r[i]])));
}
