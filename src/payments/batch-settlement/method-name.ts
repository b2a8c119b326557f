/** The method's name, on its own: the LAN routes (loaded at start) name it without loading the method's code. */
export const BATCH_METHOD_NAME = 'batch-settlement';
