/**
 * A file system of its own on a loop device, so a bench can read what reached the block device: `/sys/block/loopN/
 * stat` field 7 counts the 512-byte sectors written to it (data, the file system's metadata and its journal
 * together). Needs root, losetup and the file system's mkfs. OpenWrt's overlay is JFFS2, UBIFS or F2FS on flash and
 * ext4 on x86 and SD-card images; the first three are offered only where this kernel has them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LoopFs {
  /** The file system's kind (`ext4`, `f2fs`). */
  readonly kind: string;
  /** Where it is mounted. */
  readonly dir: string;
  /** The loop device (`loop3`). */
  readonly device: string;
  /** Bytes written to the block device so far (after a syncfs of the mount: what was dirtied has gone down). */
  bytesWritten(): number;
  close(): void;
}

const has = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** The file systems this machine can make and mount on a loop device, the flash ones first; empty if not root. */
export function loopFsKinds(): string[] {
  if (process.getuid?.() !== 0 || !has('losetup')) return [];
  const kernel = readFileSync('/proc/filesystems', 'utf8');
  const inKernel = (k: string): boolean => new RegExp(`\\s${k}$`, 'm').test(kernel);
  return ['f2fs', 'ext4'].filter((k) => inKernel(k) && has(`mkfs.${k}`));
}

/** A fresh `kind` file system of `mib` MiB in an image under `work`, mounted at `dir`. */
export function mountLoopFs(kind: string, work: string, dir: string, mib = 256): LoopFs {
  const image = join(work, `${kind}.img`);
  writeFileSync(image, '');
  execFileSync('truncate', ['-s', `${mib}M`, image]);
  if (kind === 'ext4') {
    // 4 KiB blocks (mke2fs picks 1 KiB for an image this small, no overlay has them), and no lazy init: its
    // background zeroing of inode tables and the journal would be counted as the daemon's writes.
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
  } else execFileSync(`mkfs.${kind}`, ['-q', '-f', image]);
  const loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  const device = loop.replace('/dev/', '');
  mkdirSync(dir, { recursive: true });
  try {
    // The overlay's own options on OpenWrt: noatime (fstools mounts it so), the rest the file system's defaults.
    execFileSync('mount', ['-t', kind, '-o', 'noatime', loop, dir]);
  } catch (err) {
    execFileSync('losetup', ['-d', loop]);
    throw err;
  }
  const stat = `/sys/block/${device}/stat`;
  return {
    kind,
    dir,
    device,
    bytesWritten() {
      execFileSync('sync', ['-f', dir]);
      return Number(readFileSync(stat, 'utf8').trim().split(/\s+/)[6]) * 512;
    },
    close() {
      try {
        execFileSync('umount', [dir]);
      } finally {
        if (existsSync(stat)) execFileSync('losetup', ['-d', loop]);
        rmSync(image, { force: true });
      }
    },
  };
}
