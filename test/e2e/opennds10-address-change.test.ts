// tier: lab
/**
 * The address-change and outside-flush scenarios of address-change.test.ts against openNDS 10.3.1 (its nftables
 * tables gate by MAC, so a client's new address passes its gate): see opennds10-data.test.ts for
 * SLUICE_E2E_OPENNDS_PREFIX.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'opennds10';
await import('./address-change.test.ts');
