/**
 * The file calls a durable writer makes on descriptors, as promises, in two kinds: made on libuv's thread pool
 * (`poolCalls`, while the daemon serves: a write or an fsync on flash must not stop the event loop), or made at once,
 * synchronously (`syncCalls`: at the daemon's start, before anything is served, where each pool hop — a request
 * queued, a thread woken, the loop woken for its answer — only costs CPU). A writer's steps are written once, with an
 * await between each, and run either way: the order of the calls, and so what a crash between two of them leaves, is
 * the same; a sync call's await only queues a microtask.
 */
import * as fs from 'node:fs';

export interface FileCalls {
  open(path: string, flags: string, mode?: number): Promise<number>;
  /** The file's length. */
  size(fd: number): Promise<number>;
  /** write(2) at the descriptor's offset (the end, for one opened to append): how many bytes it took. */
  write(fd: number, data: Uint8Array, offset: number, length: number): Promise<number>;
  fsync(fd: number): Promise<void>;
  fdatasync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  close(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  truncate(path: string, length: number): Promise<void>;
  copyFile(from: string, to: string, mode: number): Promise<void>;
  stat(path: string): Promise<fs.Stats>;
  readdir(path: string): Promise<string[]>;
  /** The whole file's bytes (on the pool: fs's callback readFile, a fifth less CPU than fs/promises' FileHandle). */
  readFile(path: string): Promise<Buffer>;
}

/** A node callback's result as a promise. */
function settle<T>(call: (done: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => call((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** On the thread pool, through fs's callback calls (a FileHandle's promise machinery costs more for the same call). */
export const poolCalls: FileCalls = {
  open: (path, flags, mode) => settle<number>((done) => fs.open(path, flags, mode, done)),
  size: (fd) => settle<fs.Stats>((done) => fs.fstat(fd, done)).then((st) => st.size),
  write: (fd, data, offset, length) => settle<number>((done) => fs.write(fd, data, offset, length, null, done)),
  fsync: (fd) => settle<void>((done) => fs.fsync(fd, done)),
  fdatasync: (fd) => settle<void>((done) => fs.fdatasync(fd, done)),
  ftruncate: (fd, length) => settle<void>((done) => fs.ftruncate(fd, length, done)),
  close: (fd) => settle<void>((done) => fs.close(fd, done)),
  rename: (from, to) => settle<void>((done) => fs.rename(from, to, done)),
  unlink: (path) => settle<void>((done) => fs.unlink(path, done)),
  truncate: (path, length) => settle<void>((done) => fs.truncate(path, length, done)),
  copyFile: (from, to, mode) => settle<void>((done) => fs.copyFile(from, to, mode, done)),
  stat: (path) => settle<fs.Stats>((done) => fs.stat(path, done)),
  readdir: (path) => settle<string[]>((done) => fs.readdir(path, done)),
  readFile: (path) => settle<Buffer>((done) => fs.readFile(path, done)),
};

/** At once, synchronously: each call is made before it returns (its promise settled already). */
export const syncCalls: FileCalls = {
  open: async (path, flags, mode) => fs.openSync(path, flags, mode),
  size: async (fd) => fs.fstatSync(fd).size,
  write: async (fd, data, offset, length) => fs.writeSync(fd, data, offset, length),
  fsync: async (fd) => fs.fsyncSync(fd),
  fdatasync: async (fd) => fs.fdatasyncSync(fd),
  ftruncate: async (fd, length) => fs.ftruncateSync(fd, length),
  close: async (fd) => fs.closeSync(fd),
  rename: async (from, to) => fs.renameSync(from, to),
  unlink: async (path) => fs.unlinkSync(path),
  truncate: async (path, length) => fs.truncateSync(path, length),
  copyFile: async (from, to, mode) => fs.copyFileSync(from, to, mode),
  stat: async (path) => fs.statSync(path),
  readdir: async (path) => fs.readdirSync(path),
  readFile: async (path) => fs.readFileSync(path),
};

/** A write that took none of the bytes it was given, which only a full flash explains. */
export const nothingWritten = (): Error =>
  Object.assign(new Error('a write took no bytes (the flash is full?)'), { code: 'ENOSPC' });

/** Writes every byte of `data` at the descriptor's offset (a write may take fewer than it was given). */
export async function writeAll(calls: FileCalls, fd: number, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) {
    const wrote = await calls.write(fd, data, at, data.length - at);
    if (wrote <= 0) throw nothingWritten();
    at += wrote;
  }
}
