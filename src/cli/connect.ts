// Where the client commands find the server: --url/--token, else SLUICE_URL/SLUICE_TOKEN, else the
// address `sluice serve` binds by default. The one place on the client side that reads the environment.
import type { Command } from 'commander';
import { SluiceClient, type ClientSettings } from './client.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export function addConnectionOptions(program: Command): void {
  program
    .option('--url <url>', `server URL (env SLUICE_URL, default ${DEFAULT_URL})`)
    .option('--token <secret>', 'bearer token (env SLUICE_TOKEN; prefer the variable: flags show in `ps`)');
}

export function clientSettings(command: Command, env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const opts = command.optsWithGlobals<{ url?: string; token?: string }>();
  const url = opts.url ?? (env.SLUICE_URL || DEFAULT_URL);
  const token = opts.token ?? (env.SLUICE_TOKEN || undefined);
  return { url, token: token?.trim() };
}

/** Runs `work` with a client for the invoking command and closes the client afterwards. */
export async function withClient<T>(command: Command, work: (client: SluiceClient) => Promise<T>): Promise<T> {
  const client = new SluiceClient(clientSettings(command));
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

/** Remote paths are absolute namespace paths; a relative one is taken from the root. */
export function remotePath(path: string): string {
  const absolute = path.startsWith('/') ? path : '/' + path;
  return absolute.length > 1 ? absolute.replace(/\/+$/, '') : absolute;
}

export function joinRemote(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}
