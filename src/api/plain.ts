/** Makes stats objects safe for blobmsg: drops undefined, turns non-finite numbers into null, Maps into tables. */
import type { BlobmsgTable, BlobmsgValue } from '../ubus/index.ts';

export function toBlobmsgValue(value: unknown): BlobmsgValue | undefined {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'bigint')
    return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map((v) => toBlobmsgValue(v) ?? null);
  if (value instanceof Map) return toBlobmsgTable(Object.fromEntries(value));
  if (typeof value === 'object') return toBlobmsgTable(value as Record<string, unknown>);
  return null;
}

export function toBlobmsgTable(object: Record<string, unknown>): BlobmsgTable {
  const out: BlobmsgTable = {};
  for (const [key, value] of Object.entries(object)) {
    const converted = toBlobmsgValue(value);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}
