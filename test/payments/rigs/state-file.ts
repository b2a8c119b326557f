/**
 * Reads a method's record out of the daemon's state file by its reference, whatever the file's shape around it (a
 * list of records, a table keyed by reference): the rigs wait on a record's state, not on a file format.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonLab } from '../../daemon/harness.ts';

/** The first object under `value` whose `field` is `reference`. */
function find(value: unknown, field: string, reference: string): Record<string, unknown> | null {
  if (Array.isArray(value)) {
    for (const v of value) {
      const f = find(v, field, reference);
      if (f) return f;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o[field] === 'string' && (o[field] as string).toLowerCase() === reference.toLowerCase()) return o;
    for (const v of Object.values(o)) {
      const f = find(v, field, reference);
      if (f) return f;
    }
  }
  return null;
}

/** The record of `file` in the daemon's state_dir whose `field` is `reference`; null: none (or no file yet). */
export function stateRecord(
  lab: DaemonLab,
  file: string,
  field: string,
  reference: string,
): Record<string, unknown> | null {
  let text: string;
  try {
    text = readFileSync(join(lab.dir, 'state', file), 'utf8');
  } catch {
    return null;
  }
  try {
    return find(JSON.parse(text), field, reference);
  } catch {
    return null;
  } // mid-rename: the next look
}
