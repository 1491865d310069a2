// The sluice command line: `serve` runs the server; every other command talks to it over HTTP.
import { Command } from 'commander';
import { registerServe } from './serve.js';
import { registerClientCommands } from './commands.js';
import { SluiceError } from '../errors.js';

const program = new Command();
program.name('sluice').description('event-driven data placement and processing for scientific storage').version('0.1.0');
registerServe(program);
registerClientCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = e instanceof SluiceError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  process.stderr.write(`sluice: ${msg}\n`);
  process.exit(1);
});
