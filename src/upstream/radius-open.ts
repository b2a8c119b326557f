/**
 * RADIUS's code (its accounting sink, the Disconnect/CoA listener and the RADIUS client), read only when the radius
 * plugin opens (radius.enabled, at start or on a reload that switches it on): an idle router without RADIUS never
 * loads it (docs/performance.md, "Idle memory").
 */
import type { Config } from '../config/index.ts';
import { lazyPart } from '../lazy.ts';
import type { ShaperFigures } from './radius/coa-rates.ts';
import type { RadiusDeps, RadiusUpstream } from './radius/upstream.ts';

const radiusCode = lazyPart('RADIUS', () =>
  Promise.all([import('./radius/upstream.ts'), import('./radius/coa-rates.ts')]),
);

/** A CoA-Request's rates take ubus `change`'s path: the shaper's figures and the admin command that runs it. */
export interface RadiusRates {
  shaper: ShaperFigures;
  command: (name: string, args: Record<string, unknown>) => Promise<unknown>;
}

/** RadiusUpstream.fromConfig, its code loaded first; null (nothing loaded) when RADIUS is off. */
export async function openRadiusUpstream(
  config: Config,
  deps: Omit<RadiusDeps, 'rates'>,
  rates: RadiusRates | null,
): Promise<RadiusUpstream | null> {
  if (!config.radius.enabled || config.radius.servers.length === 0) return null;
  const [{ RadiusUpstream }, { ubusChangeRates }] = await radiusCode();
  return RadiusUpstream.fromConfig(config, {
    ...deps,
    ...(rates && { rates: ubusChangeRates(rates.shaper, rates.command) }),
  });
}
