/**
 * A command's MAC (commands.ts): hex HMAC-SHA256 of the command's exact text under `mqtt.command_secret`. A file of
 * its own so that the fleet's senders sign without the channel's code, and the daemon's upstream/index.ts does not
 * load the MQTT sink's modules with it.
 */
import { createHmac } from 'node:crypto';

export function signCommand(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text, 'utf8').digest('hex');
}
