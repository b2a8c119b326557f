// tier: daemon
// luci-app-sluice's translations: the template holds exactly the app's translatable strings (scripts/i18n-scan.mjs),
// and the German translation translates every one of them with the same printf placeholders in the same order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
// @ts-expect-error plain JavaScript build script without types
import { poToLmo, readLmo, sfhHash } from '../../scripts/lmo.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;

/** msgid → msgstr of a .po/.pot file (multi-line strings joined; the header entry left out). */
function readPo(path: string): Map<string, string> {
  const entries = new Map<string, string>();
  const unquote = (lines: string) =>
    [...lines.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string).join('');
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
  assert.equal(
    [...de.keys()].filter((k) => !pot.has(k)),
    [],
    'no msgid missing from the template',
  );
  for (const id of pot.keys()) {
    const text = de.get(id);
    assert.ok(text !== undefined && text !== '', `translated: ${id}`);
    assert.equal(placeholders(text!), placeholders(id), `placeholders of ${id}`);
    // Help texts are HTML in LuCI: a <placeholder> must stay escaped (&lt;…&gt;) in the translation too.
    for (const m of text!.matchAll(/<\/?([A-Za-z][^\s>/]*)[^>]*>/g))
      assert.ok(['code', 'br', 'em', 'strong'].includes(m[1]!.toLowerCase()), `${id}: <${m[1]}> in German`);
    assert.is((text!.match(/&lt;/g) ?? []).length, (id.match(/&lt;/g) ?? []).length, `escaped placeholders of ${id}`);
  }
  assert.is(de.get('Disconnect'), 'Trennen');
  assert.match(readFileSync(`${ROOT}luci-app/po/de/sluice.po`, 'utf8'), /"Language: de\\n"/);
});

test(
  "lmo: the hash is luci-base's SuperFastHash (vectors from po2lmo output), and every translation is found by " +
    'its msgid',
  () => {
    // Key ids read out of .lmo files written by luci-base's po2lmo (built from source, 2026-11-22); scripts/lmo.mjs
    // wrote byte-identical files for po/de/sluice.po and for luci-base's own 2244-entry German catalog.
    const vectors: [string, number][] = [
      ['Disconnect', 1767020655],
      ['a', 291415938],
      ['ab', 1366002500],
      ['abc', 3535673738],
      ['Größter Kauf', 3069957295],
      ['Ü', 1157347250],
      ['', 0],
    ];
    for (const [text, hash] of vectors) assert.is(sfhHash(Buffer.from(text)), hash, text);
    const lmo: Map<number, string> = readLmo(poToLmo(readFileSync(`${ROOT}luci-app/po/de/sluice.po`, 'utf8')));
    const de = readPo(`${ROOT}luci-app/po/de/sluice.po`);
    let found = 0;
    for (const [id, text] of de) {
      if (sfhHash(Buffer.from(id)) === sfhHash(Buffer.from(text))) continue; // unchanged text: po2lmo leaves it out
      assert.is(lmo.get(sfhHash(Buffer.from(id))), text, id);
      found++;
    }
    assert.ok(found > 150, String(found));
    assert.is(lmo.get(0), 'nplurals=2; plural=n != 1;', 'the Plural-Forms entry (key 0)');
  },
);

test.run();
