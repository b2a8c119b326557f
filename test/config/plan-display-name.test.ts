// tier: fast
/**
 * pricing.display_name: the admin's title for a plan, validated by the loader, listed by ubus `pricing` and the LAN
 * endpoint's plans, and shown by the pay page (portal.js planView) instead of the section name.
 */
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { planView } from '../../src/api/view.ts';

const load = (extra: string) =>
  configFromUciPartial(parseUci(`config pricing 'day'\n\toption price_per_step '5'\n${extra}`), { hostname: 'r' });

test(
  'display_name: text of 1 to 64 characters, trimmed; control characters, blanks and longer ones are a problem ' +
    'naming it',
  () => {
    const good = load("\toption display_name ' Tagespass – 24 h ☕ '\n");
    assert.equal(good.problems, []);
    assert.is(good.config.pricing[0]!.displayName, 'Tagespass – 24 h ☕');
    assert.is(planView(good.config.pricing[0]!).display_name, 'Tagespass – 24 h ☕');
    assert.is(load('').config.pricing[0]!.displayName, undefined);
    assert.not.ok('display_name' in planView(load('').config.pricing[0]!));
    for (const bad of ['   ', 'a'.repeat(65), 'tab\there', 'bell\u0007']) {
      const r = load(`\toption display_name '${bad}'\n`);
      assert.ok(
        r.problems.some((p) => p.path === 'pricing.day.display_name' || p.path.endsWith('display_name')),
        JSON.stringify(bad),
      );
      assert.is(r.config.pricing[0]?.displayName, undefined);
    }
  },
);

test('the pay page titles a plan with its display_name, else its section name capitalized', () => {
  const sandbox: Record<string, unknown> = { btoa };
  runInNewContext(
    readFileSync(new URL('../../files/usr/share/sluice/portal/portal.js', import.meta.url), 'utf8'),
    sandbox,
  );
  const portal = sandbox.SluicePortal as { planView(p: unknown): { title: string } };
  const plan = {
    id: 'day',
    metric: 'seconds',
    step_size: '3600',
    price_per_step: '5',
    decimals: 6,
    currency: 'USDC',
    min_steps: '1',
    max_steps: '24',
  };
  assert.is(portal.planView({ ...plan, display_name: 'Day pass' }).title, 'Day pass');
  assert.is(portal.planView(plan).title, 'Day');
});

test.run();
