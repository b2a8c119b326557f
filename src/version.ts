/** sluice's version, as in package.json (a test keeps the two equal): reported upstream (MQTT status). */
export const VERSION = '0.1.0';
