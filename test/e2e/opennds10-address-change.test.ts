// tier: lab
/**
 * The address-change and outside-flush scenarios of address-change.test.ts against openNDS 10.3.1 (its nftables
 * rules gate by address and MAC, as 9.10's iptables rules do: a new lease is a client of its own, Preauthenticated,
 * until sluice re-opens it): see opennds10-data.test.ts for SLUICE_E2E_OPENNDS_PREFIX.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'opennds10';
await import('./address-change.test.ts');
