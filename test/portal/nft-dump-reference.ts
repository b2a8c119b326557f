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
const COUNTER_STRINGS = ['family', 'name', 'table'];
const TABLE_STRINGS = ['name', 'family'];
const MAP_STRINGS = ['name', 'table'];
/** The table's maps and chains, each a bit: all four, and it is intact. */
const MAP_PARTS: Readonly<Record<string, number>> = { cup: 1, cdown: 2 };
const CHAIN_PARTS: Readonly<Record<string, number>> = { count_up: 4, count_down: 8 };
const ALL_PARTS = 15;

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
  for (const k in doc) if (k !== 'nftables') refuse('no nftables array');
  const items = doc['nftables'];
  if (!Array.isArray(items)) refuse('no nftables array');
  let tableHandle = -1;
  let parts = 0;
  const pairs = new Map<string, { up?: [number, number]; down?: [number, number] }>();
  const keyOf = new Map<string, string>();
  for (const item of items as unknown[]) {
    if (!isObject(item)) refuse('an item that is not an object');
    // A JSON.parse object's keys are its own, and none is on Object.prototype: `in` is a value not undefined.
    const c = (item as Json)['counter'];
    const t = (item as Json)['table'];
    const map = (item as Json)['map'];
    const chain = (item as Json)['chain'];
    if ((c !== undefined && !isObject(c)) || (t !== undefined && !isObject(t))) refuse('not object');
    if ((map !== undefined && !isObject(map)) || (chain !== undefined && !isObject(chain))) refuse('not object');
    if (c !== undefined) counter(c as Json, pairs);
    if (t !== undefined) {
      const table = t as Json;
      strings(table, TABLE_STRINGS);
      if ('handle' in table && !isCount(table['handle'])) refuse('a bad table handle');
      if (table['name'] === TABLE && table['family'] === 'netdev') {
        if (!('handle' in table)) refuse('the table without a handle');
        if (tableHandle >= 0) refuse('the table twice');
        tableHandle = table['handle'] as number;
      }
    }
    if (map !== undefined) parts |= part(map as Json, MAP_PARTS, keyOf);
    if (chain !== undefined) parts |= part(chain as Json, CHAIN_PARTS, undefined);
  }
  if (tableHandle < 0) refuse('no table');
  const clients: ReferenceDump['clients'] = [];
  for (const [hex, { up, down }] of pairs) {
    if (up === undefined || down === undefined) continue;
    const epoch = (Math.imul(tableHandle + 1, 0x9e3779b1) ^ Math.imul(down[0], 0x85ebca6b) ^ up[0]) | 1;
    const mac = colons(hex);
    clients.push({ mac, epoch, downBytes: down[1], upBytes: up[1], key: keyOf.get(`cd_${hex}`) ?? '' });
  }
  return { tableHandle, intact: parts === ALL_PARTS, clients };
}

/** A counter: a client's, of the table, named after its MAC, is kept as its handle and IP-level bytes. */
function counter(c: Json, pairs: Map<string, { up?: [number, number]; down?: [number, number] }>): void {
  strings(c, COUNTER_STRINGS);
  if (!isCount(c['handle']) || !isCount(c['packets']) || !isCount(c['bytes'])) refuse('a bad count');
  const m = NAME.exec(c['name'] as string);
  if (c['table'] !== TABLE || m === null) return;
  const pair = pairs.get(m[2]!) ?? {};
  const side = m[1] === 'u' ? 'up' : 'down';
  if (pair[side] !== undefined) refuse('a counter twice');
  // A download counter counts at egress, with the 14-byte Ethernet header of each packet.
  const bytes = (c['bytes'] as number) - (side === 'down' ? 14 * (c['packets'] as number) : 0);
  pair[side] = [c['handle'] as number, Math.max(0, bytes)];
  pairs.set(m[2]!, pair);
}

/**
 * A map or chain: the part of the table it is (a bit of `names`, 0 for none), and, for cdown, its elements' keys by
 * counter name (the last one for a name wins).
 */
function part(o: Json, names: Readonly<Record<string, number>>, keyOf: Map<string, string> | undefined): number {
  strings(o, MAP_STRINGS);
  const elem = o['elem'];
  if (keyOf !== undefined && o['name'] === 'cdown' && o['table'] === TABLE && Array.isArray(elem))
    for (const e of elem as unknown[])
      if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string' && DOWN_NAME.test(e[1]))
        keyOf.set(e[1], e[0]);
  return o['table'] === TABLE && Object.hasOwn(names, o['name'] as string) ? names[o['name'] as string]! : 0;
}
