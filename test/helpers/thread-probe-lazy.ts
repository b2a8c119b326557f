// Imported by test/helpers/thread-probe.ts with a dynamic import (its bundle's chunk of its own, loaded when reached):
// a count of the imports of it this module instance saw.
let imports = 0;

export function imported(): number {
  imports++;
  return imports;
}
