/**
 * What a call costs a real openNDS 9.10, as measured in the real openNDS lab (../shared/docs/captive-portal.md, "What
 * a call costs openNDS"; docs/captive-portal.md): CPU the portal burns while it holds its client-list lock, so the
 * stand-ins can stop flattering (the test stand-in `ndsctl` with knob `realCost` or NDSCTL_REAL_COST=1, the bench's
 * simulated portal with `--realistic`).
 *  - `json` (every client): ≈ 11 ms + 22 ms per listed client (a shell script per client);
 *  - `json <mac|ip>`, `auth <mac|ip> …`, `deauth <mac|ip>`: ≈ 28 ms + 2.5 ms per listed client (every client hashed
 *    before the lookup);
 *  - `json <token>` (8 hex characters) and `auth|deauth <token>`: ≈ 29 ms, flat;
 *  - anything else (status, …): ≈ 5 ms (the counters re-read from the kernel).
 */
export const OPENNDS_COST = {
  listBaseMs: 11,
  listPerClientMs: 22,
  lookupBaseMs: 28,
  lookupPerClientMs: 2.5,
  tokenMs: 29,
  otherMs: 5,
} as const;

const TOKEN = /^[0-9a-f]{8}$/i;

/** CPU ms a real openNDS 9.10 spends on this ndsctl call (argv without the binary) with `listed` clients. */
export function openNdsCallCostMs(argv: readonly string[], listed: number): number {
  const args = argv[0] === '-s' ? argv.slice(2) : argv;
  const [cmd, target] = args;
  const c = OPENNDS_COST;
  if (cmd === 'json' && target === undefined) return c.listBaseMs + c.listPerClientMs * listed;
  if (cmd === 'json' || cmd === 'auth' || cmd === 'deauth') {
    return target !== undefined && TOKEN.test(target) ? c.tokenMs : c.lookupBaseMs + c.lookupPerClientMs * listed;
  }
  return c.otherMs;
}

/** Spends `ms` of CPU on this thread (the portal is busy, not sleeping: its cost lands on the router's CPU). */
export function burnCpu(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    /* busy, like openNDS's scripts */
  }
}
