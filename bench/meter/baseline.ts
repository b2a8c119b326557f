// The design the meter is measured against: everything on the main thread. Fetch over the socket, JSON.parse the
// whole snapshot, per-MAC epoch accounting in a Map of objects, then the same sessions port as the Meter.
import { createConnection } from 'node:net';
import type { SessionsPort } from '../../src/meter/index.ts';

interface Epoch { down: number; up: number; token: string; seen: number }

export class MainThreadJsonMeter {
  private readonly epochs = new Map<string, Epoch>();
  private tickNo = 0;
  constructor(private readonly socketPath: string, private readonly sessions: SessionsPort) {}

  async tick(): Promise<{ clients: number; billed: number }> {
    const text = await fetchText(this.socketPath);
    const doc = JSON.parse(text) as { client_list_length?: string; client_length?: number; clients: Record<string, Record<string, string | number>> };
    const opennds = doc.client_list_length !== undefined;
    const unit = opennds ? 1024 : 1000;
    const [dk, uk] = opennds ? ['download_this_session', 'upload_this_session'] : ['downloaded', 'uploaded'];
    const tick = ++this.tickNo;
    const billed: Array<[string, number]> = [];
    let clients = 0;
    for (const [mac, c] of Object.entries(doc.clients)) {
      clients++;
      const down = Number(c[dk]) * unit;
      const up = Number(c[uk]) * unit;
      const token = String(c['token']);
      const e = this.epochs.get(mac);
      let used = 0;
      if (e === undefined) this.epochs.set(mac, { down, up, token, seen: tick });
      else {
        used = e.seen !== tick - 1 || e.token !== token || down < e.down || up < e.up ? down + up : down - e.down + up - e.up;
        e.down = down; e.up = up; e.token = token; e.seen = tick;
      }
      if (used > 0 && this.sessions.active(mac) !== undefined) billed.push([mac, used]);
    }
    this.sessions.applyUsage(billed);
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
