/**
 * The lines of one nft run with one `add element` command per set where the batches of that run each added their
 * own: 32 openings of one moment hand the batcher 32 × 7 such lines (the quota's, the counters', the IPv6 gate's, the
 * own gate's), and nft parses, evaluates and sends each command on its own; one command of 32 elements per set is
 * the same transaction for the kernel at a third of nft's work (docs/performance.md, "gate open").
 *
 * Only the order that cannot matter changes: an element added is held back to join the next ones of its set until a
 * line that is neither an element added nor a named quota or counter made (a delete, a flush, a table, set, chain
 * or rule), and then written just before that line, one command per set. So it is made after the quotas and counters
 * its elements name (held back, never moved ahead) and before anything else that follows it. Pure: nft-batch.ts runs
 * it.
 */

/** `add element <family> <table> <set> { <elements> }`, one line. */
const ADD_ELEMENT = /^add element (\S+ \S+ \S+) \{ (.+) \}$/;

/** An `add element` line's set (`<family> <table> <set>`) and its elements as written, or null for any other line. */
export function parseAddElement(line: string): { set: string; elements: string } | null {
  const m = ADD_ELEMENT.exec(line);
  return m === null ? null : { set: m[1]!, elements: m[2]! };
}
/** A named object made: an element held back past it may name it, and nothing of it depends on a set's elements. */
const ADD_OBJECT = /^add (?:quota|counter) /;

/** `script` with each set's consecutive element additions (across other sets' and objects' lines) in one command. */
export function coalesceElements(script: string): string {
  const out: string[] = [];
  const held = new Map<string, string[]>();
  const release = (): void => {
    for (const [set, elements] of held) out.push(`add element ${set} { ${elements.join(', ')} }`);
    held.clear();
  };
  for (const line of script.split('\n')) {
    if (line === '') continue;
    const added = parseAddElement(line);
    if (added !== null) {
      const elements = held.get(added.set);
      if (elements === undefined) held.set(added.set, [added.elements]);
      else elements.push(added.elements);
      continue;
    }
    if (!ADD_OBJECT.test(line)) release();
    out.push(line);
  }
  release();
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
