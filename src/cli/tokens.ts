// `sluice token create|list|revoke` and `sluice whoami`.
import { Command, InvalidArgumentError } from 'commander';
import { withClient } from './connect.js';
import { formatTime, printJson, printLine, printNote, printTable } from './output.js';

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('issue, list and revoke bearer tokens');

  token
    .command('create')
    .description('issue a token and print its secret (shown only once)')
    .requiredOption('--scope <scope...>', 'scopes, e.g. storage.read:/beamtime storage.modify:/beamtime/raw admin')
    .option('--subject <name>', 'who the token is for (default: yourself; only admin may name another)')
    .option('--expires-in <seconds>', 'lifetime in seconds', parsePositive)
    .option('--description <text>', 'a note to recognize the token by')
    .option('--json', 'print the secret and the token as JSON')
    .action(async (opts: { scope: string[]; subject?: string; expiresIn?: number; description?: string; json?: boolean }, cmd: Command) => {
      const created = await withClient(cmd, (c) =>
        c.createToken({
          scopes: opts.scope.flatMap((s) => s.split(',')).filter((s) => s !== ''),
          ...(opts.subject !== undefined ? { subject: opts.subject } : {}),
          ...(opts.description !== undefined ? { description: opts.description } : {}),
          ...(opts.expiresIn !== undefined ? { expiresIn: opts.expiresIn } : {}),
        }),
      );
      if (opts.json) return printJson(created);
      printLine(created.secret);
      const t = created.token;
      printNote(`token ${t.id} for ${t.subject}: ${t.scopes.join(' ')}; expires ${t.expires ? formatTime(t.expires) : 'never'}`);
    });

  token
    .command('list')
    .description('list tokens (admin: all; others: their own)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const tokens = await withClient(cmd, (c) => c.listTokens());
      if (opts.json) return printJson(tokens);
      printTable(
        ['ID', 'SUBJECT', 'STATE', 'EXPIRES', 'SCOPES', 'DESCRIPTION'],
        tokens.map((t) => [t.id, t.subject, stateOf(t), formatTime(t.expires), t.scopes.join(','), t.description]),
      );
    });

  token
    .command('revoke')
    .description('revoke a token by id')
    .argument('<id>', 'token id as shown by `token list`')
    .option('--json', 'print the revoked token as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const revoked = await withClient(cmd, (c) => c.revokeToken(id));
      if (opts.json) return printJson(revoked);
      printNote(`revoked token ${revoked.id} of ${revoked.subject}`);
    });

  program
    .command('whoami')
    .description('show who the token in use belongs to')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const me = await withClient(cmd, (c) => c.whoami());
      if (opts.json) return printJson(me);
      printLine(`${me.subject} (token ${me.tokenId}): ${me.scopes.join(' ')}`);
    });
}

function stateOf(t: { revoked: string | null; expires: string | null }): string {
  if (t.revoked) return 'revoked';
  if (t.expires && Date.parse(t.expires) <= Date.now()) return 'expired';
  return 'active';
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError(`expected a positive number of seconds, got ${value}`);
  return n;
}
