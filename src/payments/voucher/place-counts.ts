/**
 * Places held in a queue, by place number (1 … capacity), with how many are held before a place counted in log time
 * (a Fenwick tree): the voucher limiter's waiters ask it at every guess, where a walk of the queue was as long as the
 * queue (a flood's thousands of addresses). Made when a queue first forms: a router never flooded holds none.
 */
export class PlaceCounts {
  private readonly tree: Int32Array;

  constructor(readonly capacity: number) {
    this.tree = new Int32Array(capacity + 1);
  }

  /** `delta` more (or, negative, fewer) places held at `place`. */
  add(place: number, delta: number): void {
    for (let i = place; i <= this.capacity; i += i & -i) this.tree[i]! += delta;
  }

  /** How many places are held before `place`. */
  before(place: number): number {
    let held = 0;
    for (let i = place - 1; i > 0; i -= i & -i) held += this.tree[i]!;
    return held;
  }

  clear(): void {
    this.tree.fill(0);
  }
}
