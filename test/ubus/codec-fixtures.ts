/** Loads the captured ubusd frames (test/fixtures/ubus-frames) for the codec and broker tests. */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FRAMES_DIR = fileURLToPath(new URL('../fixtures/ubus-frames/', import.meta.url));

export interface FixtureAttr {
  id: number;
  name: string;
  len: number;
  value?: unknown;
  value_hex?: string;
  blobmsg?: FixtureNode[];
}
export interface FixtureNode {
  name: string;
  type: string;
  value: unknown;
}
export interface FixtureDecoded {
  version: number;
  type: string;
  type_num: number;
  seq: number;
  peer: string;
  blob_len: number;
  attrs: FixtureAttr[];
}
export interface FixtureFrame {
  file: string;
  description: string;
  direction: string;
  hex: string;
  decoded: FixtureDecoded;
  request_hex?: string;
  request_decoded?: FixtureDecoded;
}

export function loadFrameFiles(): FixtureFrame[] {
  return readdirSync(FRAMES_DIR)
    .filter((f) => /^\d\d-.*\.json$/.test(f))
    .sort()
    .map((file) => ({ file, ...(JSON.parse(readFileSync(FRAMES_DIR + file, 'utf8')) as Omit<FixtureFrame, 'file'>) }));
}

export type CaptureLine =
  | { mark: string }
  | { t: number; conn: number; event: string; direction?: string }
  | { t: number; conn: number; direction: 'client->ubusd' | 'ubusd->client'; hex: string };

export function loadCapture(): CaptureLine[] {
  return readFileSync(FRAMES_DIR + 'capture-full.jsonl', 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as CaptureLine);
}

export function captureFrames(): Array<{ conn: number; direction: string; hex: string; line: number }> {
  const out: Array<{ conn: number; direction: string; hex: string; line: number }> = [];
  loadCapture().forEach((l, i) => {
    if ('hex' in l) out.push({ conn: l.conn, direction: l.direction, hex: l.hex, line: i + 1 });
  });
  return out;
}

export { prng } from '../../src/prng.ts';
