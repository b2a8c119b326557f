/**
 * What a process asks of the files under one directory, from `strace -f -y`: per file, the bytes it wrote, the
 * fsyncs (fsync and fdatasync) and the renames onto it; a directory's fsyncs count as its own. A temp file
 * (`.name.tmp-…`, written then renamed over `name`) is counted as `name`. Attaches to a running process, so the
 * window is whatever lies between `attach` and `stop`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

export interface FileAsks {
  bytes: number;
  writes: number;
  fsyncs: number;
  renames: number;
}

const CALLS = 'write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,rename,renameat,renameat2';

export interface StraceWindow {
  /** Stops tracing and reads what the process asked, per file relative to `root`. */
  stop(): Promise<Map<string, FileAsks>>;
}

/** Starts `strace -f -y` on `pid`, logging to `out`; resolves once it is attached to every thread. */
export async function attachStrace(pid: number, root: string, out: string): Promise<StraceWindow> {
  const child: ChildProcess = spawn(
    'strace',
    ['-f', '-y', '-s', '0', '-e', `trace=${CALLS}`, '-o', out, '-p', `${pid}`],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  // strace says so on stderr once per thread it attached; give it until the first line and a moment for the rest.
  const deadline = Date.now() + 5000;
  while (!err.includes('attached') && Date.now() < deadline && child.exitCode === null) await sleep(20);
  await sleep(300);
  if (child.exitCode !== null) throw new Error(`strace exited ${child.exitCode}: ${err}`);
  return {
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      return parse(readFileSync(out, 'utf8'), root);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `.x.tmp-<pid>-<hex>` → `x`; anything else as it is. */
function owner(path: string): string {
  return path.replace(/(^|\/)\.([^/]+)\.tmp-[^/]*$/, '$1$2');
}

/** Per file under `root`: what the trace in `text` asked. Split calls (`<unfinished …>`) are joined per thread. */
export function parse(text: string, root: string): Map<string, FileAsks> {
  const pending = new Map<string, string>();
  const files = new Map<string, FileAsks>();
  const at = (p: string): FileAsks | null => {
    if (!p.startsWith(root)) return null;
    const key = owner(relative(root, p)) || '.';
    let f = files.get(key);
    if (!f) files.set(key, (f = { bytes: 0, writes: 0, fsyncs: 0, renames: 0 }));
    return f;
  };
  for (const raw of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const [, tid, rest] = m as unknown as [string, string, string];
    let line = rest;
    if (line.endsWith('<unfinished ...>')) {
      pending.set(tid, line.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) {
      line = (pending.get(tid) ?? '') + resumed[1];
      pending.delete(tid);
    }
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (!call) continue;
    const [, name, args, ret] = call as unknown as [string, string, string, string];
    if (Number(ret) < 0) continue;
    if (/^(p?writev?2?|pwrite64)$/.test(name)) {
      const f = at(/^\d+<([^>]*)>/.exec(args)?.[1] ?? '');
      if (f) {
        f.bytes += Number(ret);
        f.writes++;
      }
    } else if (name === 'fsync' || name === 'fdatasync') {
      const f = at(/^\d+<([^>]*)>/.exec(args)?.[1] ?? '');
      if (f) f.fsyncs++;
    } else if (name.startsWith('rename')) {
      // rename("a", "b") or renameat(AT_FDCWD</dir>, "a", AT_FDCWD</dir>, "b"): the last quoted path is the target.
      const targets = [...args.matchAll(/"([^"]*)"/g)].map((q) => q[1]!);
      const f = at(targets[targets.length - 1] ?? '');
      if (f) f.renames++;
    }
  }
  return files;
}
