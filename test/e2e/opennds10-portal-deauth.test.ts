// tier: lab
/** portal-deauth.test.ts against openNDS 10.3.1: see opennds10-data.test.ts for SLUICE_E2E_OPENNDS_PREFIX. */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'opennds10';
await import('./portal-deauth.test.ts');
