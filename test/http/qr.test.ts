// tier: fast
/**
 * The pay page's QR encoder (files/usr/share/sluice/portal/qr.js) against known vectors: matrices made by an
 * independent encoder (Python's qrcode 8.2, test/fixtures/qr/vectors.json) for every version 1-10 at every level, each
 * at its full byte capacity, every mask pattern among them, and UTF-8 text; one matrix pinned in full.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

interface Qr {
  version: number;
  size: number;
  mask: number;
  modules: boolean[][];
}
interface QrApi {
  encode(text: string, level?: string, mask?: number): Qr;
  svg(qr: Qr, border?: number): string;
  MAX_VERSION: number;
}

const sandbox: Record<string, unknown> = {};
runInNewContext(readFileSync(new URL('../../files/usr/share/sluice/portal/qr.js', import.meta.url), 'utf8'), sandbox);
const QR = sandbox.SluiceQr as QrApi;
const fixture = JSON.parse(readFileSync(new URL('../fixtures/qr/vectors.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ text: string; level: string; mask: number; version: number; sha256: string }>;
  full: { text: string; level: string; mask: number; rows: string[] };
};
const rows = (qr: Qr) => Array.from(qr.modules, (r) => r.map((d) => (d ? '1' : '0')).join(''));

test('every vector: same version and the same matrix, module for module', () => {
  assert.is(fixture.vectors.length, 42);
  assert.equal(new Set(fixture.vectors.map((v) => v.mask)).size, 8, 'all eight masks are among them');
  for (const v of fixture.vectors) {
    const qr = QR.encode(v.text, v.level, v.mask);
    assert.is(qr.version, v.version, `${v.level} ${v.text.length}`);
    assert.is(qr.size, v.version * 4 + 17);
    assert.is(
      createHash('sha256').update(rows(qr).join('\n')).digest('hex'),
      v.sha256,
      `${v.level} v${v.version} mask ${v.mask}`,
    );
  }
  assert.equal(rows(QR.encode(fixture.full.text, fixture.full.level, fixture.full.mask)), fixture.full.rows);
});

test(
  'one byte past version 10 is refused; the mask chosen by itself is one of the eight; the SVG draws every dark ' +
    'module',
  () => {
    assert.throws(() => QR.encode('x'.repeat(214), 'M'), /too long/);
    const qr = QR.encode('http://192.168.1.1:2122/portal');
    assert.ok(qr.mask >= 0 && qr.mask <= 7);
    assert.is(qr.version, 3);
    const dark = qr.modules.flat().filter(Boolean).length;
    const svg = QR.svg(qr);
    assert.is(svg.match(/h1v1h-1z/g)!.length, dark);
    assert.match(svg, `viewBox="0 0 ${qr.size + 8} ${qr.size + 8}"`);
  },
);

test.run();
