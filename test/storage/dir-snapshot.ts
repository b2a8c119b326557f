/**
 * A state directory's files as a damage suite built them, and the put-back before each harm: the directory made
 * exactly as emptying it and writing every file anew would (each file with its bytes and mode 0o600, each directory
 * holding one with mkdir's default mode, nothing else), touching only what differs. The owner's last open changed a
 * file or two of it, and the harms run once per byte of the file, so rewriting the whole directory each time was most
 * of these suites' time (unlink, rmdir, mkdir, create). Everything a put-back needs but the listing and the kept
 * files' bytes is worked out once, from the snapshot: paths, the directories, one read buffer. The harmed file's new
 * bytes are written by the put-back too: on a tmpfs over the file there (a plain file of its mode, truncated), where
 * an unlink and a create cost twice a truncated write; on a disk as a new file, since ext4 flushes a file truncated
 * and written again when it is closed.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/** The modes a new file and a new directory get (process.umask() reads it by setting it twice: once, here). */
const UMASK = process.umask();
const FILE_MODE = 0o600 & ~UMASK;
const DIR_MODE = 0o777 & ~UMASK;
/** A kept file is read as it is: a link is not followed (ELOOP: removed), a FIFO does not block the open. */
const READ_AS_FOUND = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** The harmed file written over as it is found: the same, and a FIFO without a reader refused (ENXIO: removed). */
const WRITE_AS_FOUND = constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** statfs's f_type of a tmpfs (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;

interface KeptFile {
  path: string;
  bytes: Buffer;
  /** The put-back that found it whole (and so left it). */
  keptAt: number;
}

interface KeptDir {
  path: string;
  /** The put-back that found it a directory. */
  seenAt: number;
}

export class DirSnapshot {
  /** Each file's bytes, by its path relative to the directory. */
  readonly files = new Map<string, Buffer>();
  private readonly kept = new Map<string, KeptFile>();
  private readonly dirs = new Map<string, KeptDir>();
  /** As long as the longest file: a kept file is read into it, never into a buffer of its own. */
  private readonly buffer: Buffer;
  private putBacks = 0;
  /** Whether the harmed file is written over in place (a tmpfs) rather than anew (see above). */
  private readonly inPlace: boolean;

  constructor(readonly dir: string) {
    this.inPlace = statfsSync(dir).type === TMPFS_MAGIC;
    this.read('');
    for (const [rel, bytes] of this.files) {
      this.kept.set(rel, { path: join(dir, rel), bytes, keptAt: 0 });
      for (let d = dirname(rel); d !== '.'; d = dirname(d)) this.dirs.set(d, { path: join(dir, d), seenAt: 0 });
    }
    this.dirs.set('', { path: dir, seenAt: 0 });
    this.buffer = Buffer.allocUnsafe(Math.max(0, ...[...this.files.values()].map((b) => b.length)));
  }

  private read(under: string): void {
    for (const name of readdirSync(join(this.dir, under))) {
      const rel = join(under, name);
      if (statSync(join(this.dir, rel)).isDirectory()) this.read(rel);
      else this.files.set(rel, readFileSync(join(this.dir, rel)));
    }
  }

  /** Puts the directory back, but for `harmed`, which then holds `bytes` (mode 0o600, as a new file would). */
  restore(harmed: string, bytes: Uint8Array): void {
    const at = ++this.putBacks;
    const written = this.walk('', at, harmed, bytes);
    if (!written) {
      this.parentOf(harmed, at);
      writeFileSync(join(this.dir, harmed), bytes, { mode: 0o600 });
    }
    for (const [rel, file] of this.kept) {
      if (file.keptAt === at || rel === harmed) continue;
      this.parentOf(rel, at);
      writeFileSync(file.path, file.bytes, { mode: 0o600 });
    }
  }

  /** Whether it wrote `bytes` over the harmed file where it found it. */
  private walk(under: string, at: number, harmed: string, bytes: Uint8Array): boolean {
    let written = false;
    const top = this.dirs.get(under)!;
    top.seenAt = at;
    for (const name of readdirSync(top.path)) {
      const rel = under === '' ? name : `${under}/${name}`;
      const path = `${top.path}/${name}`;
      const dir = this.dirs.get(rel);
      const file = rel === harmed ? undefined : this.kept.get(rel);
      if (dir) {
        const stat = lstatSync(path);
        if (stat.isDirectory()) {
          if ((stat.mode & 0o7777) !== DIR_MODE) chmodSync(path, DIR_MODE);
          if (this.walk(rel, at, harmed, bytes)) written = true;
        } else unlinkSync(path);
      } else if (file) {
        if (this.whole(file)) file.keptAt = at;
      } else if (rel === harmed && this.inPlace && writeOver(path, bytes)) written = true;
      else remove(path);
    }
    return written;
  }

  /** Whether a kept file stays (its bytes mended in place when only they differ); otherwise it is removed. */
  private whole(file: KeptFile): boolean {
    const found = this.compare(file);
    if (found === 'other') remove(file.path);
    else if (found === 'bytes') writeFileSync(file.path, file.bytes);
    return found !== 'other';
  }

  /** `same`; `bytes`: a file of its mode whose bytes differ; `other`: anything else (a mode, a directory, a link). */
  private compare(file: KeptFile): 'same' | 'bytes' | 'other' {
    let fd: number;
    try {
      fd = openSync(file.path, READ_AS_FOUND);
    } catch {
      return 'other';
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile() || (stat.mode & 0o7777) !== FILE_MODE) return 'other';
      const size = file.bytes.length;
      if (stat.size !== size) return 'bytes';
      let got = 0;
      for (let n = -1; got < size && n !== 0; got += n) n = readSync(fd, this.buffer, got, size - got, got);
      return got === size && this.buffer.compare(file.bytes, 0, size, 0, size) === 0 ? 'same' : 'bytes';
    } finally {
      closeSync(fd);
    }
  }

  private parentOf(rel: string, at: number): void {
    const parent = dirname(rel);
    if (parent === '.' || this.dirs.get(parent)!.seenAt === at) return;
    mkdirSync(this.dirs.get(parent)!.path, { recursive: true });
    for (let d = parent; d !== '.'; d = dirname(d)) this.dirs.get(d)!.seenAt = at;
  }
}

/**
 * Writes `bytes` over the file at `path` when it is a plain file of a new file's mode (true); anything else is left
 * for the caller to remove (false), truncated or not.
 */
function writeOver(path: string, bytes: Uint8Array): boolean {
  let fd: number;
  try {
    fd = openSync(path, WRITE_AS_FOUND);
  } catch {
    return false;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || (stat.mode & 0o7777) !== FILE_MODE) return false;
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
    return true;
  } finally {
    closeSync(fd);
  }
}

/** Removes what is not in the snapshot: one unlink for a file (or a link), rm's walk only for a directory. */
function remove(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'EPERM') rmSync(path, { recursive: true, force: true });
    else if (code !== 'ENOENT') throw err;
  }
}
