// Imported by test/helpers/thread-probe.ts with a dynamic import (its bundle's chunk of its own, loaded when reached):
// a count of the imports of it this module instance saw, and the file V8 says it ran from.
let imports = 0;

export function imported(): number {
  imports++;
  return imports;
}

/** The file V8 names as this module's (a stack trace through it is mapped from there): a URL. */
export function ranFrom(): string {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, sites) => sites;
  const sites = new Error().stack as unknown as NodeJS.CallSite[];
  Error.prepareStackTrace = prepare;
  return sites[0]!.getFileName() ?? '';
}
