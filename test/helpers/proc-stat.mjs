// A /proc/<pid>/stat (or /proc/thread-self/stat) line read by field, for the runner and its hosts (Linux only; the
// callers catch a missing /proc). The comm may hold spaces and parentheses, so the fields are split after its last ')'.

/** USER_HZ: 100 on every Linux this runs on (the kernel's ABI for the CPU fields). */
const TICKS_PER_S = 100;

/** The fields after the comm: [0] state (field 3), [2] pgrp (5), [11..14] utime, stime, cutime, cstime (14..17). */
export function statFields(stat) {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * The CPU time in ms a stat line gives: user and sys, with `reaped` also those of the children it waited for;
 * `{ user, sys }` apart, or their sum from cpuMs.
 */
export function cpuSplit(stat, reaped = false) {
  const [utime, stime, cutime, cstime] = statFields(stat).slice(11, 15).map(Number);
  const ms = (ticks) => (ticks * 1000) / TICKS_PER_S;
  return reaped ? { user: ms(utime + cutime), sys: ms(stime + cstime) } : { user: ms(utime), sys: ms(stime) };
}

export function cpuMs(stat, reaped = false) {
  const { user, sys } = cpuSplit(stat, reaped);
  return user + sys;
}
