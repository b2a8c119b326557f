import { randomFillSync } from 'node:crypto';
import { UBUS_SYSTEM_OBJECT_MAX } from '../codec/index.ts';

/** Source of random u32 values; injectable so tests can make ids predictable. */
export type RandomU32 = () => number;

const pool = new Uint32Array(256);
let poolPos = pool.length;
/** ubusd reads ids from /dev/urandom; crypto randomness is the same quality and costs one syscall per 256 ids. */
export const cryptoRandomU32: RandomU32 = () => {
  if (poolPos >= pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  return pool[poolPos++]!;
};

/**
 * One id space (clients, objects or types): random u32 values, unique within the table, never below
 * UBUS_SYSTEM_OBJECT_MAX (1024) unless reserved explicitly (the system objects 1..3).
 */
export class IdTable<T> {
  private readonly entries = new Map<number, T>();

  constructor(private readonly random: RandomU32) {}

  alloc(value: T): number {
    for (;;) {
      const id = this.random() >>> 0;
      if (id < UBUS_SYSTEM_OBJECT_MAX || this.entries.has(id)) continue;
      this.entries.set(id, value);
      return id;
    }
  }

  reserve(id: number, value: T): void {
    this.entries.set(id, value);
  }

  get(id: number): T | undefined {
    return this.entries.get(id);
  }

  delete(id: number): void {
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }
}
