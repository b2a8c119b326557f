/**
 * What a router may send the fleet, at most: a message beyond these is refused at parse (counted, acknowledged),
 * never handed to the database or to code that would fail on it (JSON.stringify throws on a structure nested a few
 * thousand deep; PostgreSQL refuses a jsonb nested too deep; a sum of amounts can pass numeric(78,0)). docs/fleet.md
 * states them ("What a router may send").
 */

/** Nesting of a status' free-form maps (`health`, `pricing`, `queue`, `sessions`): sluice's own use at most 4. */
export const MAX_JSON_DEPTH = 8;
/** Bytes of each of them as JSON: sluice's own are well under 4 KiB (pricing grows with the plans: 64 KiB). */
export const MAX_JSON_BYTES = { health: 16_384, queue: 16_384, sessions: 16_384, pricing: 65_536 } as const;
/**
 * Rows of one usage message: a router's report is split into parts of at most mqtt.max_payload bytes, ~85 bytes a
 * row, so the default 64 KiB part holds ~770 and a 10,000-session router fits one part of 850 KB.
 */
export const MAX_USAGE_ROWS = 10_000;
/** Bytes of one message: a 10,000-row usage part is ~850 KB. */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;
/**
 * Digits of an amount (a payment's, an escrow's): 10^40 - 1 is far above any real payment (an EVM uint256 has 78
 * digits, but no price comes near it), and a day's roll-up of a router's payments in numeric(78,0) can then never
 * overflow (it would take 10^38 payments).
 */
export const MAX_AMOUNT_DIGITS = 40;
/**
 * Sessions a router's usage reports may make new in the fleet's tables in one UTC day (of the database's clock, not
 * the router's): a session normally comes with its `started` message, and a usage report makes its row only when it
 * arrives first (another collector, a replay), so an honest router stays far below; a router inventing session ids
 * would otherwise add rows without end. Usage reports only: a session message may carry a payment, never refused
 * for a count. Checked where the rows are written (store.ts, usage-batch.ts), under the router's lock.
 */
export const MAX_NEW_SESSIONS_PER_DAY = 20_000;
/** The reason a usage report over MAX_NEW_SESSIONS_PER_DAY is counted under in `fleet_rejects`. */
export const OVER_NEW_SESSIONS = `over ${MAX_NEW_SESSIONS_PER_DAY} new sessions a day`;

/**
 * A venue router's declared lease TTL (its status' `lease_ttl`, whole seconds), as its main.venue_lease_ttl is
 * bounded: any other value is not believed (the lease service counts it refused) and the fleet's own TTL holds.
 */
export const LEASE_TTL_S = { min: 5, max: 86_400 } as const;

export class Unbounded extends Error {}

/**
 * `v` as JSON text when it is nested at most MAX_JSON_DEPTH deep and at most maxBytes long, else an Unbounded
 * saying which. Walked without recursion, and stopped at the first node past a bound: a deep or huge structure costs
 * only what was read of it. A NUL in a text is refused too (PostgreSQL's jsonb cannot hold \u0000).
 */
export function boundedJson(v: unknown, what: string, maxBytes: number): string {
  const stack: Array<[unknown, number]> = [[v, 1]];
  let nodes = 0;
  let bytes = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (++nodes > maxBytes) throw new Unbounded(`${what} is over ${maxBytes} bytes`);
    if (typeof node === 'string') {
      bytes += node.length;
      if (node.includes('\u0000')) throw new Unbounded(`${what} holds a NUL character`);
    } else bytes += 1;
    if (bytes > maxBytes) throw new Unbounded(`${what} is over ${maxBytes} bytes`);
    if (node === null || typeof node !== 'object') continue;
    if (depth > MAX_JSON_DEPTH) throw new Unbounded(`${what} is nested over ${MAX_JSON_DEPTH} deep`);
    if (Array.isArray(node)) for (const x of node) stack.push([x, depth + 1]);
    else
      for (const [k, x] of Object.entries(node)) {
        bytes += k.length;
        if (k.includes('\u0000')) throw new Unbounded(`${what} holds a NUL character`);
        stack.push([x, depth + 1]);
      }
  }
  const text = JSON.stringify(v);
  if (text.length > maxBytes) throw new Unbounded(`${what} is over ${maxBytes} bytes`);
  return text;
}
