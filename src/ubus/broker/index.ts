export { UbusBroker } from './broker.ts';
export type { UbusBrokerOptions } from './broker.ts';
export { BrokerCore } from './core.ts';
export type { BrokerCoreOptions } from './core.ts';
export { runUbusd } from './ubusd.ts';
export type { RunUbusdIo } from './ubusd.ts';
export type { RandomU32 } from './ids.ts';
