// Test support: the client CLI as bin/sluice runs it, with the function commands registered even
// before src/cli/commands.ts registers them itself.
import { Command } from 'commander';
import { registerClientCommands } from '../../src/cli/commands.js';
import { registerFunctionCommands } from '../../src/cli/functions.js';
import { SluiceError } from '../../src/errors.js';

const program = new Command();
program.name('sluice');
registerClientCommands(program);
if (!program.commands.some((c) => c.name() === 'fn')) registerFunctionCommands(program);
program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = e instanceof SluiceError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  process.stderr.write(`sluice: ${msg}\n`);
  process.exit(1);
});
