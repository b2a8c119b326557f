// tier: fast
/**
 * Where the hotspot is metered (portal/hotspot-devices.ts): the portal's own word on its device (openNDS's UCI and
 * opennds.conf `gatewayinterface`, nodogsplash's `GatewayInterface`, the `clientif` openNDS 9.10 and 10.3.1 list each
 * client on), `shape_device` overriding it, and a device that does not exist or carries none of the portal's clients
 * named as a problem. The router's devices are a table here (sysfs in the daemon).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  carries,
  confGatewayInterfaces,
  decideHotspot,
  listedClientDevices,
  neighbourDevices,
  uciGatewayInterfaces,
  type DeviceFacts,
} from '../../src/portal/hotspot-devices.ts';
import { findHotspot } from '../../src/gate/hotspot.ts';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/ndsctl/${name}`, import.meta.url), 'utf8');

/** A café router: br-lan (staff), br-guest (the hotspot) with a radio and a cable, a WAN. */
const CAFE: DeviceFacts = (() => {
  const masters: Record<string, string | null> = {
    'br-lan': null,
    'br-guest': null,
    'phy1-ap0': 'br-guest',
    lan3: 'br-guest',
    lan1: 'br-lan',
    wan: null,
  };
  return { exists: (d) => d in masters, masterOf: (d) => masters[d] ?? null };
})();

const OPENWRT_OPENNDS_UCI = `
config opennds 'setup'
	option enabled '1'
	option fwhook_enabled '1'
	option gatewayinterface 'br-guest'
	option gatewayname 'Cafe'
	list users_to_router 'allow tcp port 22'
`;

test('openNDS UCI: the enabled section names the device', () => {
  assert.equal(uciGatewayInterfaces(OPENWRT_OPENNDS_UCI), ['br-guest']);
  assert.equal(uciGatewayInterfaces(OPENWRT_OPENNDS_UCI.replace("enabled '1'", "enabled '0'")), []);
  assert.equal(uciGatewayInterfaces('config opennds\n\toption gatewayinterface "br-x"\n'), ['br-x']);
  assert.equal(uciGatewayInterfaces('config opennds setup\n\toption gatewayinterface br-y\n'), ['br-y']);
});

test('nodogsplash UCI: each instance its own device (several hotspots)', () => {
  const text = `
config nodogsplash
	option enabled 1
	option gatewayinterface 'br-guest'

config nodogsplash
	option enabled 1
	option gatewayinterface 'br-iot'

config nodogsplash
	option enabled 0
	option gatewayinterface 'br-off'
`;
  assert.equal(uciGatewayInterfaces(text), ['br-guest', 'br-iot']);
});

test('opennds.conf and nodogsplash.conf: the key in any case; a commented one is none', () => {
  assert.equal(confGatewayInterfaces('# gatewayinterface br-lan\ngatewayinterface br-guest\n'), ['br-guest']);
  assert.equal(confGatewayInterfaces('GatewayInterface wlan0-1\nGatewayAddress 192.168.1.1\n'), ['wlan0-1']);
  assert.equal(confGatewayInterfaces('# GatewayInterface br-lan\n'), []);
  assert.equal(confGatewayInterfaces('gatewayinterface br lan; rm -rf /\n'), ['br']);
  assert.equal(confGatewayInterfaces('gatewayinterface $(reboot)\n'), []);
});

test('clientif of openNDS 9.10 listings', () => {
  const three = listedClientDevices(fixture('opennds-9.10-all-3-clients.json'));
  assert.equal([...three.values()], ['br-lan', 'br-lan', 'br-lan']);
  assert.equal([...listedClientDevices(fixture('opennds-9.10-all-1-preauth.json')).values()], ['tgr-lan']);
});

test('clientif of openNDS 10.3.1: a MAC with two neighbour entries prints its device twice', () => {
  const devices = listedClientDevices(fixture('opennds-10.3.1-all-mac-twice-new-lease.json'));
  assert.equal([...devices.values()], ['br-lan']);
});

test('a mesh client: the local device is the first word', () => {
  const listing = JSON.stringify({
    client_list_length: '1',
    clients: { '02:00:00:00:0c:09': { mac: '02:00:00:00:0c:09', clientif: 'phy1-ap0 02:11:22:33:44:55 phy1-mesh0' } },
  });
  assert.equal([...listedClientDevices(listing).values()], ['phy1-ap0']);
});

test('nodogsplash lists no device; its inf/nan listing is not JSON: no devices, no throw', () => {
  assert.equal(listedClientDevices(fixture('nodogsplash-5.0.2-all-2-clients.synthetic.json')).size, 0);
  assert.equal(listedClientDevices(fixture('nodogsplash-5.0.2-inf-nan.synthetic.json')).size, 0);
  assert.equal(listedClientDevices('').size, 0);
});

test('the portal decides; shape_device overrides; both defaults are br-lan', () => {
  const fromPortal = decideHotspot({ configured: [], portal: ['br-guest'], clients: [] }, CAFE);
  assert.equal(fromPortal, { devices: ['br-guest'], source: 'portal config', problem: null });
  const override = decideHotspot({ configured: ['br-lan'], portal: ['br-guest'], clients: [] }, CAFE);
  assert.equal(override, { devices: ['br-lan'], source: 'shape_device', problem: null });
  const none = decideHotspot({ configured: [], portal: [], clients: [] }, CAFE);
  assert.equal(none, { devices: ['br-lan'], source: 'portal default', problem: null });
});

test("clients on a radio of the hotspot's bridge are carried by the bridge", () => {
  assert.ok(carries(['br-guest'], 'phy1-ap0', CAFE));
  assert.ok(carries(['br-guest'], 'br-guest', CAFE));
  assert.not.ok(carries(['br-lan'], 'phy1-ap0', CAFE));
  // Without a config file, the clients' devices decide: the bridge that carries them.
  const d = decideHotspot({ configured: [], portal: [], clients: ['phy1-ap0', 'lan3'] }, CAFE);
  assert.equal(d, { devices: ['br-guest'], source: 'portal clients', problem: null });
});

test('a second hotspot device the clients are on is metered too', () => {
  const facts: DeviceFacts = {
    exists: (d) => ['br-guest', 'br-iot', 'br-lan'].includes(d),
    masterOf: () => null,
  };
  const d = decideHotspot({ configured: [], portal: ['br-guest'], clients: ['br-guest', 'br-iot'] }, facts);
  assert.equal(d.devices, ['br-guest', 'br-iot']);
  assert.is(d.problem, null);
});

test('several configured devices are all metered; a port of a listed bridge is left to the bridge', () => {
  const two = decideHotspot({ configured: ['br-guest', 'br-lan'], portal: [], clients: [] }, CAFE);
  assert.equal(two, { devices: ['br-guest', 'br-lan'], source: 'shape_device', problem: null });
  // phy1-ap0 is a port of br-guest: hooked on both, each of its packets would count twice.
  const port = decideHotspot({ configured: ['phy1-ap0', 'br-guest', 'br-lan'], portal: [], clients: [] }, CAFE);
  assert.equal(port.devices, ['br-guest', 'br-lan']);
});

test('problems: a device that does not exist; a device that carries none of the listed clients', () => {
  const missing = decideHotspot({ configured: ['br-gues'], portal: [], clients: [] }, CAFE);
  assert.is(missing.problem, 'device br-gues does not exist');
  const elsewhere = decideHotspot(
    { configured: ['br-lan'], portal: ['br-guest'], clients: ['br-guest', 'phy1-ap0'] },
    CAFE,
  );
  assert.is(elsewhere.problem, "br-lan carries none of the portal's clients (they are on br-guest, phy1-ap0)");
  // The package's old default on a café router: br-lan exists, the clients are on br-guest.
  const old = decideHotspot(
    {
      configured: [],
      portal: [],
      clients: [...listedClientDevices(fixture('opennds-9.10-all-3-clients.json')).values()],
    },
    { exists: (d) => d === 'br-lan', masterOf: () => null },
  );
  assert.is(old.problem, null);
});

test('neighbour table: the devices a MAC has complete entries on', () => {
  const table = [
    'IP address       HW type     Flags       HW address            Mask     Device',
    '10.77.0.101      0x1         0x2         02:00:00:00:0c:01     *        br-guest',
    '10.77.0.201      0x1         0x0         02:00:00:00:0c:01     *        br-lan',
    '10.77.1.2        0x1         0x2         02:00:00:00:0a:02     *        wan',
  ].join('\n');
  assert.equal(neighbourDevices(table, '02:00:00:00:0C:01'), ['br-guest']);
  assert.equal(neighbourDevices(table, '02:00:00:00:0c:99'), []);
});

test('findHotspot: the daemon takes shape_device over the portal file, the file over the default', () => {
  const probe = { facts: CAFE, portal: ['br-guest'] };
  assert.equal(findHotspot({ shapeDevices: [], portal: 'opennds' }, probe).decision.devices, ['br-guest']);
  assert.equal(findHotspot({ shapeDevices: ['wan'], portal: 'opennds' }, probe).decision.source, 'shape_device');
});

test.run();
