/**
 * RADIUS (radius.enabled; docs/radius.md): sluice as a NAS. The plugin brings the `radius` upstream sink (accounting,
 * the Disconnect/CoA listener: upstream/radius/, its code loaded only when this opens) and the `voucher` method that
 * asks the server (../voucher/), standing behind printed vouchers (local-voucher/ passes the codes its book does not
 * hold on to it). Switched on or off by a reload, it opens or closes whole (PaymentPlugins.switchTo).
 */
import { lazyPart } from '../../lazy.ts';
import { openRadiusUpstream } from '../../upstream/index.ts';
import type { PaymentPart, PaymentPlugin, PluginHost } from '../plugin.ts';
import type { VoucherMethod } from '../voucher/voucher.ts';

/**
 * The voucher method and the RADIUS library under it, read when the plugin opens (docs/performance.md, "Idle memory").
 */
const voucherCode = lazyPart('the RADIUS voucher', () => import('../voucher/voucher.ts'));

export const radiusPlugin: PaymentPlugin = {
  name: 'radius',
  switch: 'radius',
  // POST /voucher and the pay page's voucher form (local-voucher/ brings the route; RADIUS's codes come through it).
  register: (add) => add.lanUse({ name: 'radius', on: (c) => c.radius.enabled }),
  open: openRadius,
};

async function openRadius(host: PluginHost): Promise<PaymentPart> {
  const { config, log, sessions, gate, shaper } = host;
  const { VoucherMethod } = await voucherCode();
  let voucher: VoucherMethod | undefined;
  const sink = await openRadiusUpstream(
    config,
    {
      log,
      stateDir: config.main.stateDir,
      sessions,
      recovered: host.recovered,
      atStart: host.atStart,
      closeGate: (mac) => gate.closed(mac),
      voucher: (port) =>
        (voucher = new VoucherMethod({
          client: { request: port.request },
          nas: port.nas,
          onAccepted: port.accepted,
          log,
        })),
    },
    // A CoA-Request's rates take ubus `change`'s path (refused until the daemon runs).
    shaper && { shaper, command: (name, args) => host.command(name, args, 'coa') },
  );
  if (!sink || !voucher) return { methods: [] };
  host.sink(sink);
  return { methods: [voucher], standsBehind: true };
}
