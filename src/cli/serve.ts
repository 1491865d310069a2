// `sluice serve`: the embedded deployment in one process.
import type { Command } from 'commander';
import type { ConfigOverrides } from '../config.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the server: WebDAV door and REST API on one port, embedded state')
    .option('-d, --data <dir>', 'data directory (default ./sluice-data, env SLUICE_DATA)')
    .option('-p, --port <port>', 'TCP port (default 8080, env SLUICE_PORT)')
    .option('--host <host>', 'address to bind (default 127.0.0.1, env SLUICE_HOST)')
    .option('-c, --config <file>', 'JSON configuration file (default DATA/sluice.json when present)')
    .option('--public-url <url>', 'base URL used in absolute links, when behind a proxy')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--no-fsync', 'do not fsync before acknowledging writes (throwaway data only)')
    .action(
      async (opts: {
        data?: string;
        port?: string;
        host?: string;
        config?: string;
        publicUrl?: string;
        logLevel?: string;
        fsync: boolean;
      }) => {
        const flags: ConfigOverrides & { configFile?: string } = {};
        if (opts.data !== undefined) flags.dataDir = opts.data;
        if (opts.port !== undefined) flags.port = Number(opts.port);
        if (opts.host !== undefined) flags.host = opts.host;
        if (opts.config !== undefined) flags.configFile = opts.config;
        if (opts.publicUrl !== undefined) flags.publicUrl = opts.publicUrl;
        if (opts.logLevel !== undefined) flags.logLevel = opts.logLevel as ConfigOverrides['logLevel'];
        if (opts.fsync === false) flags.fsync = false;
        const { loadConfig } = await import('../config.js');
        const { createCore, ensureAdminToken, adminTokenPath } = await import('../app.js');
        const { buildServer } = await import('../api/server.js');
        const config = loadConfig(flags);
        const core = await createCore(config);
        const secret = await ensureAdminToken(core);
        const app = await buildServer(core);
        const address = await app.listen({ host: config.host, port: config.port });
        const url = config.publicUrl ?? address;
        process.stdout.write(`sluice serving ${config.dataDir} at ${url} (WebDAV at /, API at /api/v1)\n`);
        if (secret) {
          process.stdout.write(
            `first start: created an admin token in ${adminTokenPath(config)} (mode 0600). Use it with:\n` +
              `  export SLUICE_URL=${url} SLUICE_TOKEN=$(cat ${adminTokenPath(config)})\n`,
          );
        }
        let stopping = false;
        const stop = async (signal: string) => {
          if (stopping) return;
          stopping = true;
          core.log.info({ signal }, 'shutting down');
          await core.channels.stop();
          await app.close();
          await core.close();
          process.exit(0);
        };
        process.on('SIGTERM', () => void stop('SIGTERM'));
        process.on('SIGINT', () => void stop('SIGINT'));
      },
    );
}
