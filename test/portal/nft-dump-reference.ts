/**
 * The contract of portal/nft-scan.ts written plainly on JSON.parse's tree, for the property tests: what a dump says
 * (each client with both counters, in the order nft lists them, its epoch, bytes and map key; the table's handle;
 * whether it is whole), or 'refused'. The scanner must give the same on every input, except where only the bytes can
 * tell (an escape in a string it reads, a key twice, a count written as 5.0 or 5e0, nesting deeper than 32): there it
 * refuses and JSON.parse cannot see why.
 */
export interface ReferenceDump {
  tableHandle: number;
  intact: boolean;
  clients: Array<{ mac: string; epoch: number; downBytes: number; upBytes: number; key: string }>;
}

const NAME = /^c([ud])_([0-9a-f]{12})$/;
const DOWN_NAME = /^cd_[0-9a-f]{12}$/;
const TABLE = 'sluice_count';
const ITEM_KEYS = ['counter', 'table', 'map', 'chain'];
const COUNTER_STRINGS = ['family', 'name', 'table'];
const TABLE_STRINGS = ['name', 'family'];
const MAP_STRINGS = ['name', 'table'];

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && !Object.is(v, -0);

/** 12 hex digits in their colon form. */
const colons = (hex: string): string =>
  `${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10)}`;

class Refused extends Error {}
function strings(o: Json, keys: readonly string[]): void {
  for (const k of keys) if (typeof o[k] !== 'string') refuse(`${k} missing or not a string`);
}
const refuse = (why: string): never => {
  throw new Refused(why);
};

export function referenceDump(text: string): ReferenceDump | 'refused' {
  try {
    return read(text);
  } catch (err) {
    if (err instanceof Refused || err instanceof SyntaxError) return 'refused';
    throw err;
  }
}

function read(text: string): ReferenceDump {
  const doc: unknown = JSON.parse(text);
  if (!isObject(doc)) return refuse('not an object');
  if (Object.keys(doc).some((k) => k !== 'nftables') || !Array.isArray(doc['nftables'])) refuse('no nftables array');
  let tableHandle = -1;
  const parts = new Set<string>();
  const pairs = new Map<string, { up?: [number, number]; down?: [number, number] }>();
  const keyOf = new Map<string, string>();
  for (const item of doc['nftables'] as unknown[]) {
    if (!isObject(item)) refuse('an item that is not an object');
    const it = item as Json;
    for (const key of ITEM_KEYS) if (key in it && !isObject(it[key])) refuse('not object');
    const c = it['counter'] as Json | undefined;
    if (c !== undefined) {
      strings(c, COUNTER_STRINGS);
      if (!isCount(c['handle']) || !isCount(c['packets']) || !isCount(c['bytes'])) refuse('a bad count');
      const m = NAME.exec(c['name'] as string);
      if (c['table'] === TABLE && m !== null) {
        const pair = pairs.get(m[2]!) ?? {};
        const side = m[1] === 'u' ? 'up' : 'down';
        if (pair[side] !== undefined) refuse('a counter twice');
        // A download counter counts at egress, with the 14-byte Ethernet header of each packet.
        const bytes = (c['bytes'] as number) - (side === 'down' ? 14 * (c['packets'] as number) : 0);
        pair[side] = [c['handle'] as number, Math.max(0, bytes)];
        pairs.set(m[2]!, pair);
      }
    }
    const t = it['table'] as Json | undefined;
    if (t !== undefined) {
      strings(t, TABLE_STRINGS);
      if ('handle' in t && !isCount(t['handle'])) refuse('a bad table handle');
      if (t['name'] === TABLE && t['family'] === 'netdev') {
        if (!('handle' in t)) refuse('the table without a handle');
        if (tableHandle >= 0) refuse('the table twice');
        tableHandle = t['handle'] as number;
      }
    }
    for (const kind of ['map', 'chain'] as const) {
      const o = it[kind] as Json | undefined;
      if (o === undefined) continue;
      strings(o, MAP_STRINGS);
      if (kind === 'map' && Array.isArray(o['elem']))
        for (const e of o['elem'] as unknown[])
          if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string' && o['name'] === 'cdown')
            if (o['table'] === TABLE && DOWN_NAME.test(e[1])) keyOf.set(e[1], e[0]);
      if (o['table'] === TABLE) parts.add(`${kind} ${o['name'] as string}`);
    }
  }
  if (tableHandle < 0) refuse('no table');
  const clients: ReferenceDump['clients'] = [];
  for (const [hex, { up, down }] of pairs) {
    if (up === undefined || down === undefined) continue;
    const epoch = (Math.imul(tableHandle + 1, 0x9e3779b1) ^ Math.imul(down[0], 0x85ebca6b) ^ up[0]) | 1;
    const mac = colons(hex);
    clients.push({ mac, epoch, downBytes: down[1], upBytes: up[1], key: keyOf.get(`cd_${hex}`) ?? '' });
  }
  const intact = ['map cup', 'map cdown', 'chain count_up', 'chain count_down'].every((p) => parts.has(p));
  return { tableHandle, intact, clients };
}
