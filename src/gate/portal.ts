/**
 * The portal the gate drives, built from main's options: the valve (the portal's control socket when there is one,
 * else the ndsctl command) and, with main.kernel_quota, the kernel byte quota under each data session's gate, which
 * the valve's brake sets before an auth and removes after a deauth.
 */
import type { MainConfig } from '../config/index.ts';
import type { Log } from '../log.ts';
import { KernelQuota, nftRunner, portalSocketResolver, Shaper, Valve } from '../portal/index.ts';
import { isLive, remainingNumber, type SessionReadView } from '../sessions/index.ts';
import { brakeAtOpening } from './shared-brake.ts';

export interface Portal {
  valve: Valve;
  kernelQuota: KernelQuota | null;
  /** Speed tiers, when a plan sells one. */
  shaper: Shaper | null;
  /** The control socket found at start (the meter's worker reads snapshots through it), if any. */
  socket: string | undefined;
}

/** `shaping`: a plan sells a speed tier (rate_down/rate_up): the valve sets each such session's rates (portal/shaper.ts). */
export function openPortal(main: MainConfig, sessions: SessionReadView, log: Log, shaping = false): Portal {
  const socketPath = portalSocketResolver(main);
  const socket = socketPath();
  log.info('portal control', { via: socket ?? 'command', ndsctl_socket: main.ndsctlSocket });
  const kernelQuota = main.kernelQuota ? new KernelQuota({
    run: nftRunner(main.nft, main.ndsctlTimeoutMs), log,
    session: (mac) => {
      const s = sessions.byMac(mac);
      return s !== null && isLive(s) && s.metric === 'bytes' ? { left: remainingNumber(s, Date.now()), allotment: s.allotment } : null;
    },
  }) : null;
  const shaper = shaping ? new Shaper({
    device: main.shapeDevice, log,
    tc: nftRunner(main.tc, main.ndsctlTimeoutMs, undefined, 'ERR_SHAPER', 'tc'),
    nft: nftRunner(main.nft, main.ndsctlTimeoutMs, undefined, 'ERR_SHAPER', 'nft'),
  }) : null;
  const valve = new Valve({
    command: main.ndsctl, socketPath, timeoutMs: main.ndsctlTimeoutMs, maxOutputBytes: main.portalOutputMax, flavour: main.portal, log,
    ...(kernelQuota && { brake: {
      beforeAuth: (mac, ip, limit) => brakeAtOpening(kernelQuota, (m) => sessions.byMac(m), mac, ip, limit),
      afterDeauth: (mac) => kernelQuota.remove(mac),
    } }),
    ...(shaper && { shaper }),
  });
  return { valve, kernelQuota, shaper, socket };
}
