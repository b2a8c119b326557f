/**
 * How sluice's nft rules name the hotspot's device(s) (portal/hotspot-devices.ts decides them): one device as a plain
 * name, several as one chain on all of them. A netdev base chain takes `devices = { … }` (kernel 5.5+, nft 0.9.3+),
 * so a hotspot on a guest bridge and a second SSID's interface is counted, braked and gated by the same chains, one
 * table each as with one device. Pure.
 */

/** The hook's device clause of a netdev base chain on `devices` (at least one). */
export function hookDevices(devices: readonly string[]): string {
  const names = quoted(devices);
  return names.length === 1 ? `device ${names[0]}` : `devices = { ${names.join(', ')} }`;
}

/** The operand of an `iifname`/`oifname` match on `devices` (at least one): a name, or a set of them. */
export function deviceNames(devices: readonly string[]): string {
  const names = quoted(devices);
  return names.length === 1 ? names[0]! : `{ ${names.join(', ')} }`;
}

function quoted(devices: readonly string[]): string[] {
  if (devices.length === 0) throw new RangeError('no hotspot device to hook');
  return [...new Set(devices)].map((d) => JSON.stringify(d));
}
