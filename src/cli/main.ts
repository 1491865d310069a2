// The sluice command line: `serve` runs the server; every other command talks to it over HTTP.
import { Command } from 'commander';
import { registerServe } from './serve.js';
import { SluiceError } from '../errors.js';

// `sluice … | head` closes the pipe early: that is the reader's choice, not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command();
program.name('sluice').description('event-driven data placement and processing for scientific storage').version('0.1.0');
registerServe(program);
// The server never needs the client commands, and the client never needs the server: loading only
// one side keeps `serve` lean (idle memory) and client commands quick to start.
if (process.argv[2] !== 'serve') {
  const { registerClientCommands } = await import('./commands.js');
  registerClientCommands(program);
}

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = e instanceof SluiceError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  process.stderr.write(`sluice: ${msg}\n`);
  process.exit(1);
});
