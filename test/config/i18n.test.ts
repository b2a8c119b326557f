// luci-app-sluice's translations: the template holds exactly the app's translatable strings (scripts/i18n-scan.mjs),
// and the German translation translates every one of them with the same printf placeholders in the same order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url).pathname;

/** msgid → msgstr of a .po/.pot file (multi-line strings joined; the header entry left out). */
function readPo(path: string): Map<string, string> {
  const entries = new Map<string, string>();
  const unquote = (lines: string) => [...lines.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string).join('');
  for (const block of readFileSync(path, 'utf8').split(/\n\n+/)) {
    const m = /^msgid ((?:".*"\n?)+)msgstr ((?:".*"\n?)+)$/m.exec(block.replace(/^#.*\n/gm, ''));
    if (!m) continue;
    const id = unquote(m[1]!);
    if (id !== '') entries.set(id, unquote(m[2]!));
  }
  return entries;
}
const placeholders = (s: string) => [...s.matchAll(/%(?:\d+\$)?[-+ 0#]*\d*(?:\.\d+)?[sdfxXtmh]/g)].map((m) => m[0]);

test('po/templates/sluice.pot is up to date with the sources', () => {
  const r = spawnSync(process.execPath, ['scripts/i18n-scan.mjs', '--check'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.ok(readPo(`${ROOT}luci-app/po/templates/sluice.pot`).size > 150);
});

test('the German translation covers every string, placeholders intact, nothing stale', () => {
  const pot = readPo(`${ROOT}luci-app/po/templates/sluice.pot`);
  const de = readPo(`${ROOT}luci-app/po/de/sluice.po`);
  assert.equal([...de.keys()].filter((k) => !pot.has(k)), [], 'no msgid missing from the template');
  for (const id of pot.keys()) {
    const text = de.get(id);
    assert.ok(text !== undefined && text !== '', `translated: ${id}`);
    assert.equal(placeholders(text!), placeholders(id), `placeholders of ${id}`);
  }
  assert.is(de.get('Disconnect'), 'Trennen');
  assert.match(readFileSync(`${ROOT}luci-app/po/de/sluice.po`, 'utf8'), /"Language: de\\n"/);
});

test.run();
