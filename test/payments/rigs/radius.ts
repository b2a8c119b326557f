/**
 * The PaymentMethod suite's rig for the RADIUS plugin's `voucher` (payments/radius/): the real daemon as a NAS of a
 * real FreeRADIUS (test/peers/freeradius.ts) configured as a voucher server whose vouchers sell once, 4 MiB data
 * vouchers of its own users file. Printed vouchers stand in front of it (none printed here: every code goes on to
 * RADIUS). What "money" is: the sessions handed out and the Access-Accepts the server gave for the voucher (its
 * auth.log). A replay is the server's to refuse: ERR_VOUCHER_REJECTED, nothing accepted. The reference is made by the
 * method (`<user>/<random>`): the suite counts the sessions of the device.
 */
import { DaemonLab } from '../../daemon/harness.ts';
import { radiusSection } from '../../helpers/uci-sections.ts';
import { FreeRadius } from '../../peers/freeradius.ts';
import type { MethodRig, RigPayment } from '../method-suite.ts';

const MiB = 1_048_576n;
const VOUCHERS = 60;

const user = (n: number): string => `suite${String(n).padStart(3, '0')}`;

/** A users-file entry per voucher: its code is its password too, 4 MiB of data (no deadline). */
function vouchers(): string {
  return Array.from(
    { length: VOUCHERS },
    (_, i) => `${user(i + 1)}\tCleartext-Password := "${user(i + 1)}-pass"\n\tMikrotik-Total-Limit = ${4n * MiB}\n`,
  ).join('\n');
}

export async function radiusRig(): Promise<MethodRig> {
  const radius = await FreeRadius.start({ sellOnce: vouchers() });
  let lab: DaemonLab | undefined;
  try {
    lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true, extraConfig: radiusSection(radius) });
    await lab.startDaemon();
  } catch (err) {
    await lab?.close();
    await radius.close();
    throw err;
  }
  const daemon = lab;
  let next = 0;
  const sessions = async (): Promise<number> => Number((await daemon.call('sessions', { limit: 1 } as never)).total);
  return {
    lab: daemon,
    rules: { ceiling: true, refund: false, pending: false },
    replayCodes: ['ERR_VOUCHER_REJECTED'],
    plan: { id: 'data', allotment: 4n * MiB },
    payment: async (): Promise<RigPayment> => {
      if (next === VOUCHERS) throw new Error("the rig's vouchers are used up");
      const code = user(++next);
      return { fields: { method: 'voucher', code, password: `${code}-pass` }, reference: null, code };
    },
    badPayment: async () => ({ fields: { method: 'voucher', code: '' }, reference: null }),
    money: async (p) => ({
      sessions: await sessions(),
      accepted: radius.accepted().filter((u) => u === p.code).length,
    }),
    settledAfterEnd: async () => {},
    close: async () => {
      await daemon.close();
      await radius.close();
    },
  };
}
