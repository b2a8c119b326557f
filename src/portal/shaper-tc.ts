/**
 * The shaper's tc side (portal/shaper.ts): the argv of each tc call, and what `tc -s class show` says a class still
 * queues. Pure: no I/O.
 */

/** HTB's handle on the LAN device (hex, as tc writes it): a major other tools rarely pick. */
export const SHAPER_MAJOR = '51';

export const classId = (minor: number): string => `${SHAPER_MAJOR}:${minor.toString(16)}`;

/** tc's argv for the root qdisc (replacing whatever root qdisc the device had). */
export function tcQdiscArgs(device: string): string[] {
  return [
    'qdisc',
    'replace',
    'dev',
    device,
    'root',
    'handle',
    `${SHAPER_MAJOR}:`,
    'stab',
    'overhead',
    '-14',
    'linklayer',
    'ethernet',
    'htb',
    'r2q',
    '1000',
  ];
}

/** tc's argv for a client's download class (created or changed in place). */
export function tcClassArgs(device: string, minor: number, downBps: number): string[] {
  const rate = `${downBps}bit`;
  return [
    'class',
    'replace',
    'dev',
    device,
    'parent',
    `${SHAPER_MAJOR}:`,
    'classid',
    classId(minor),
    'htb',
    'rate',
    rate,
    'ceil',
    rate,
    'quantum',
    '1514',
  ];
}

export function tcClassDeleteArgs(device: string, minor: number): string[] {
  return ['class', 'del', 'dev', device, 'classid', classId(minor)];
}

export function tcClassStatsArgs(device: string, minor: number): string[] {
  return ['-s', 'class', 'show', 'dev', device, 'classid', classId(minor)];
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 * 1024, G: 1024 * 1024 * 1024 };

/**
 * The bytes a class still has queued, from `tc -s class show`'s `backlog 95340b 4p` (tc may print `93Kb`); 0 when its
 * queue is empty, or when the output says nothing readable (the class is deleted at once, as it always was).
 */
export function queuedBytes(stats: string): number {
  const m = /backlog\s+(\d+(?:\.\d+)?)([KMG]?)b\s+(\d+)p/.exec(stats);
  if (m === null || Number(m[3]) === 0) return 0;
  return Math.max(1, Math.round(Number(m[1]) * SIZE_UNITS[m[2]!]!));
}
