// tier: fast
/**
 * docs/mqtt.md documents the `venue` topic and every `venue_*` command a router takes, and mqtt.md, roaming.md and
 * ubus-api.md give a handover's payment one reference format and one idempotency key, the ones venue-open.ts makes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

test('mqtt.md: the venue topic and the venue_* commands', () => {
  const mqtt = read('docs/mqtt.md');
  assert.match(mqtt, /`<prefix>\/<router>\/venue`/);
  for (const cmd of ['venue_answer', 'venue_release', 'venue_open', 'venue_charge'])
    assert.match(mqtt, new RegExp(`\\| \`${cmd} \\{`), cmd);
});

test("a handover's payment: one reference format and key in the three pages and the code", () => {
  const reference = /reference\s+`<venue>\/<lease id>#<epoch>\/<from(?: router)?>`/;
  const key = /idempotency key `venue:<lease id>#<epoch>`/;
  for (const page of ['docs/mqtt.md', 'docs/roaming.md', 'docs/ubus-api.md']) {
    const text = read(page).replace(/\s+/g, ' ');
    assert.match(text, reference, `${page}: reference`);
    assert.match(text, key, `${page}: idempotency key`);
  }
  const code = read('src/upstream/venue-open.ts');
  assert.match(code, /const reference = `\$\{venue\}\/\$\{lease\}#\$\{epoch\}\/\$\{from\}`/);
  assert.match(code, /`venue:\$\{lease\}#\$\{epoch\}`/);
});

test.run();
