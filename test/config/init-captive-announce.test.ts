// tier: daemon
// files/etc/init.d/sluice's RFC 8910 announcement (sluice_dhcp_announce, run by start_service) by a real sh, uci a
// stand-in over a file (test/helpers/init-announce.ts): what the LAN's DHCP is told to announce for each portal and pay
// page, and that a change takes back exactly what sluice added. test/e2e/sluice-gate.test.ts shows the lab's dnsmasq
// handing the resulting option to a DHCP client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { announce, type Dhcp } from '../helpers/init-announce.ts';

const LAN: Dhcp = ['lan=dhcp', 'interface=lan', 'dhcp_option=6,192.168.1.1'];
const URI = 'https://wifi.example.net/captive';

test("portal 'sluice', an https page: option 114, DHCPv6's 103, odhcpd's captive_portal_uri name /captive", () => {
  const r = announce('sluice', 'https://wifi.example.net/portal?x=1', LAN);
  assert.equal(r.dhcp, [
    ...LAN,
    `dhcp_option=114,${URI}`,
    `dhcp_option=option6:103,${URI}`,
    `captive_portal_uri=${URI}`,
    `sluice_captive_uri=${URI}`,
  ]);
  assert.ok(r.calls.includes('commit dhcp'), r.calls.join(' '));
  assert.match(
    r.calls.join(' '),
    /logger -t sluice captive API announced by DHCP: https:\/\/wifi\.example\.net\/captive/,
  );
});

test('run again with nothing changed: no write, no reload', () => {
  const once = announce('sluice', 'https://wifi.example.net:8443/portal', LAN);
  const twice = announce('sluice', 'https://wifi.example.net:8443/portal', once.dhcp);
  assert.equal(twice.dhcp, once.dhcp);
  assert.equal(twice.calls, []);
  assert.ok(once.dhcp.includes('dhcp_option=114,https://wifi.example.net:8443/captive'), once.dhcp.join(' '));
});

test("another portal, or the page back on plain http: exactly sluice's lines go, the admin's stay", () => {
  const on = announce('sluice', 'https://wifi.example.net/portal', LAN);
  assert.equal(announce('opennds', 'https://wifi.example.net/portal', on.dhcp).dhcp, LAN);
  assert.equal(announce('sluice', '', on.dhcp).dhcp, LAN);
  assert.equal(announce('sluice', 'http://192.168.1.1:2122/portal', on.dhcp).dhcp, LAN);
});

test('a moved page: the old URL is taken back, the new one announced', () => {
  const on = announce('sluice', 'https://old.example.net/portal', LAN);
  const moved = announce('sluice', 'https://wifi.example.net/portal', on.dhcp);
  assert.equal(moved.dhcp, [
    ...LAN,
    `dhcp_option=114,${URI}`,
    `dhcp_option=option6:103,${URI}`,
    `captive_portal_uri=${URI}`,
    `sluice_captive_uri=${URI}`,
  ]);
});

test("an admin's own captive_portal_uri for odhcpd is kept, on and off", () => {
  const own = [...LAN, 'captive_portal_uri=https://own.example.net/api'];
  const on = announce('sluice', 'https://wifi.example.net/portal', own);
  assert.ok(on.dhcp.includes('captive_portal_uri=https://own.example.net/api'));
  assert.not.ok(on.dhcp.includes(`captive_portal_uri=${URI}`));
  assert.equal(announce('opennds', '', on.dhcp).dhcp, own);
});

test('plain http, an unset page, another portal: nothing announced (phones ignore plain-http APIs) or written', () => {
  for (const [portal, url] of [
    ['sluice', ''],
    ['sluice', 'http://192.168.1.1:2122/portal'],
    ['opennds', 'https://wifi.example.net/portal'],
    ['sluice', "https://evil.example.net'x/portal"],
  ] as const) {
    const r = announce(portal, url, LAN);
    assert.equal(r.dhcp, LAN, `${portal} ${url}`);
    assert.equal(r.calls, [], `${portal} ${url}`);
  }
});

test('no dhcp.lan section: the log says the API is not announced, nothing is written', () => {
  const r = announce('sluice', 'https://wifi.example.net/portal', ['wan=dhcp']);
  assert.equal(r.dhcp, ['wan=dhcp']);
  assert.match(r.calls.join(' '), /no dhcp\.lan section: the captive API \(https:\/\/wifi\.example\.net\/captive\)/);
});

test.run();
