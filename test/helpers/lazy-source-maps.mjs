// Stack traces that name the sources of a bundled test file (test/helpers/bundle.mjs's linked source maps), with each
// map read only when a stack trace first reaches a frame of its module. Node's own source maps (--enable-source-maps,
// process.setSourceMapsEnabled) read and parse the map of every module as it loads: ~45 ms of the ~205 ms of CPU
// `api/args`'s bundle takes to import, in each of the fast tier's files, most of which print no stack trace at all.
// A frame's text is V8's own (async, new, method and type names as V8 writes them) with its bundle location replaced by
// the source's; a frame of a module without a map, or a position the map does not cover, stays as V8 wrote it.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Module URL or path → its SourceMap, or null when it has none. */
const maps = new Map();

/** The source map of the module at `file` (a file: URL or a path), read on first use. */
function mapOf(file) {
  if (maps.has(file)) return maps.get(file);
  let map = null;
  try {
    const url = file.startsWith('file:') ? new URL(file) : new URL(`file://${file}`);
    if (/\.m?js$/.test(url.pathname)) {
      const source = readFileSync(url, 'utf8');
      const link = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(source.slice(-1000));
      if (link && !link[1].startsWith('data:')) {
        const mapUrl = new URL(link[1], url);
        const payload = JSON.parse(readFileSync(mapUrl, 'utf8'));
        payload.sources = payload.sources.map((s) => fileURLToPath(new URL(s, mapUrl)));
        map = new SourceMap(payload);
      }
    }
  } catch {
    map = null; // unreadable or not a file: V8's text stays
  }
  maps.set(file, map);
  return map;
}

/** One frame as V8 writes it, its location moved to the source's when the module's map covers it. */
function frameText(site) {
  const text = String(site);
  const file = site.getFileName();
  const line = site.getLineNumber();
  const column = site.getColumnNumber();
  if (!file || !line || !column) return text;
  const map = mapOf(file);
  const entry = map?.findEntry(line - 1, column - 1);
  if (!entry?.originalSource || entry.originalLine === undefined) return text;
  const at = `${file}:${line}:${column}`;
  const i = text.lastIndexOf(at);
  if (i < 0) return text;
  const source = `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  return text.slice(0, i) + source + text.slice(i + at.length);
}

/** Node's header of a stack trace: the error's own toString, or what it can say when that throws. */
function header(error) {
  try {
    return Error.prototype.toString.call(error);
  } catch {
    return '<error>';
  }
}

// Imported for this effect (thread-file.mjs, and `node --import` for a file in a process of its own): this realm's
// Error.prepareStackTrace, which Node calls in place of its own.
Error.prepareStackTrace = (error, sites) => {
  const head = header(error);
  if (sites.length === 0) return head;
  return `${head}\n    at ${sites.map(frameText).join('\n    at ')}`;
};
