// tier: lab
/**
 * The data scenarios of data.test.ts against openNDS 10.3.1, the version OpenWrt ships, instead of Debian's 9.10: built
 * from its public source outside the repo and installed under SLUICE_E2E_OPENNDS_PREFIX (or the well-known cache path,
 * test/e2e/lab.ts); without it every scenario is one counted skip. Any other lab file runs against it the same way
 * with SLUICE_E2E_LAB_PORTAL=opennds10.
 */
process.env['SLUICE_E2E_LAB_PORTAL'] = 'opennds10';
await import('./data.test.ts');
