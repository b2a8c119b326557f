#!/usr/bin/env node
// The idle time of `node test/run.mjs`, estimated from one run's output on a busy machine (docs/testing.md, "The
// suite's time"). Each file's line gives its wall time W, its CPU time C and its run-queue wait Q (the time its
// processes were runnable but had no CPU). A file on an idle machine takes d = max(W − Q, C), of which C computes.
// A lab file's Q over-counts (a browser's processes wait side by side) and its peers (openNDS, the upstream server)
// are outside its process group: its d is at least its shortest wall among the runs given in LAB_WALLS.
// The runner is then replayed on `cores` idle CPUs: the unit pool's and the lab pool's lanes side by side, each pool
// longest first, every running file slowed by cores / Σ(C/d) while that demand is above the cores (fair sharing).
// Σ C / cores is the floor no schedule beats.
// Usage: [LAB_WALLS=a.txt,b.txt] node scripts/test-time.mjs <run output> [unit lanes = 3] [lab lanes = 2] [cores = 2]
import { readFileSync } from 'node:fs';

const [file, unitLanes = '3', labLanes = '2', cores = '2'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/test-time.mjs <run output> [unit lanes] [lab lanes] [cores]');
  process.exit(2);
}
const LINE = /^(?:ok {2}|FAIL) (\S+) \(.*?, (\d+) ms, cpu (\d+) ms(?:, runq (\d+) ms)?\)/;
const isLab = (name) => /^(e2e\/|package\/procd-lab)/.test(name);

const shortest = new Map();
for (const f of (process.env.LAB_WALLS ?? '').split(',').filter(Boolean)) {
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const m = LINE.exec(line);
    if (m && isLab(m[1])) shortest.set(m[1], Math.min(shortest.get(m[1]) ?? Infinity, Number(m[2])));
  }
}

const rows = [];
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const m = LINE.exec(line);
  if (!m) continue;
  const [name, W, C, Q] = [m[1], Number(m[2]), Number(m[3]), Number(m[4] ?? 0)];
  const lab = isLab(name);
  const d = Math.max(W - Q, C, lab ? Math.min(W, shortest.get(name) ?? W) : 0);
  rows.push({ name, W, C, Q, d, share: d > 0 ? C / d : 0, lab });
}

/** Seconds until both pools are done, in 10 ms steps. */
function replay(unitN, labN, coreN) {
  const queue = { unit: rows.filter((r) => !r.lab), lab: rows.filter((r) => r.lab) };
  for (const q of Object.values(queue)) q.sort((a, b) => b.d - a.d);
  const lanes = { unit: unitN, lab: labN };
  const running = [];
  const fill = () => {
    for (const kind of ['unit', 'lab']) {
      while (running.filter((r) => r.kind === kind).length < lanes[kind] && queue[kind].length > 0) {
        const f = queue[kind].shift();
        running.push({ kind, left: f.d, share: f.share });
      }
    }
  };
  let t = 0;
  fill();
  while (running.length > 0) {
    const demand = running.reduce((a, r) => a + r.share, 0);
    const speed = demand > coreN ? coreN / demand : 1;
    for (const r of running) r.left -= 10 * speed;
    t += 10;
    for (let i = running.length - 1; i >= 0; i--) if (running[i].left <= 0) running.splice(i, 1);
    fill();
  }
  return t / 1000;
}

const s = (list, k) => (list.reduce((a, r) => a + r[k], 0) / 1000).toFixed(0);
const unit = rows.filter((r) => !r.lab);
const lab = rows.filter((r) => r.lab);
console.log(
  `${rows.length} files: Σwall ${s(rows, 'W')} s, Σcpu ${s(rows, 'C')} s (unit ${s(unit, 'C')}, ` +
    `lab ${s(lab, 'C')}), ` +
    `Σrunq ${s(rows, 'Q')} s; idle Σ unit ${s(unit, 'd')} s, lab ${s(lab, 'd')} s; ` +
    `cpu floor ${(s(rows, 'C') / Number(cores)).toFixed(0)} s`,
);
console.log(
  `idle estimate, ${unitLanes} unit lanes beside ${labLanes} lab lanes on ${cores} cores: ` +
    `${replay(Number(unitLanes), Number(labLanes), Number(cores)).toFixed(0)} s`,
);
for (const r of [...rows].sort((a, b) => b.d - a.d).slice(0, Number(process.env.TOP ?? 10))) {
  const sec = (ms) => (ms / 1000).toFixed(1);
  console.log(`  ${r.name}: idle ~${sec(r.d)} s (wall ${sec(r.W)}, cpu ${sec(r.C)}, runq ${sec(r.Q)})`);
}
