// The client commands: everything except `serve` talks to a running server through client.ts.
import type { Command } from 'commander';
import { addConnectionOptions } from './connect.js';
import { registerTokenCommands } from './tokens.js';
import { registerFileCommands } from './files.js';
import { registerPutGetCommands } from './put-get.js';
import { registerEventCommands } from './events.js';
import { registerFunctionCommands } from './functions.js';
import { registerCatalogCommands } from './catalog.js';
import { registerTriggerCommands } from './triggers.js';
import { registerPlacementCommands } from './placement.js';

export function registerClientCommands(program: Command): void {
  addConnectionOptions(program);
  registerTokenCommands(program);
  registerPutGetCommands(program);
  registerFileCommands(program);
  registerEventCommands(program);
  registerFunctionCommands(program);
  registerCatalogCommands(program);
  registerTriggerCommands(program);
  registerPlacementCommands(program);
}
