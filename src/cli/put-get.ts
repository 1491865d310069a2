// `sluice put` and `sluice get`: streaming uploads and downloads through the WebDAV door, one file
// or a whole tree, each verified against the adler32 the server reports.
import type { Command } from 'commander';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SluiceError } from '../errors.js';
import type { SluiceClient, TransferResult } from './client.js';
import { joinRemote, remotePath, withClient } from './connect.js';
import { byName, formatSize, printJsonLine, printLine, printNote } from './output.js';
import { progressFor } from './progress.js';

interface TransferOptions {
  recursive?: boolean;
  json?: boolean;
}

export function registerPutGetCommands(program: Command): void {
  program
    .command('put')
    .description('upload a file or tree, verifying adler32')
    .argument('<local>', 'local file or directory')
    .argument('<remote>', 'namespace path; an existing directory receives the file under its own name')
    .option('-r, --recursive', 'upload a directory tree; <remote> names the copy')
    .option('--json', 'print one JSON line per file')
    .action(async (local: string, remote: string, opts: TransferOptions, cmd: Command) => {
      await withClient(cmd, (c) => put(c, local, remote, opts));
    });

  program
    .command('get')
    .description('download a file or tree, checking adler32')
    .argument('<remote>', 'namespace path')
    .argument('<local>', 'local path; an existing directory receives the file under its own name')
    .option('-r, --recursive', 'download a directory tree; <local> names the copy')
    .option('--json', 'print one JSON line per file')
    .action(async (remote: string, local: string, opts: TransferOptions, cmd: Command) => {
      await withClient(cmd, (c) => get(c, remote, local, opts));
    });
}

async function put(client: SluiceClient, local: string, remoteArg: string, opts: TransferOptions): Promise<void> {
  const info = await stat(local);
  const remote = remotePath(remoteArg);
  if (info.isDirectory()) {
    if (!opts.recursive) throw new SluiceError('IS_A_DIRECTORY', `${local} is a directory; use --recursive`);
    await putTree(client, local, remote, opts);
    return;
  }
  const existing = remoteArg.endsWith('/') ? 'DIR' : (await client.find(remote))?.fileType;
  const target = existing === 'DIR' ? joinRemote(remote, basename(local)) : remote;
  await putFile(client, local, target, info.size, opts);
}

async function putTree(client: SluiceClient, localDir: string, remoteDir: string, opts: TransferOptions): Promise<void> {
  await client.makeCollection(remoteDir);
  const entries = await readdir(localDir, { withFileTypes: true });
  entries.sort((a, b) => byName(a.name, b.name));
  for (const entry of entries) {
    const local = join(localDir, entry.name);
    const remote = joinRemote(remoteDir, entry.name);
    if (entry.isDirectory()) await putTree(client, local, remote, opts);
    else if (entry.isFile()) await putFile(client, local, remote, (await stat(local)).size, opts);
    else printNote(`skipped ${local}: not a regular file or directory`);
  }
}

async function putFile(client: SluiceClient, local: string, remote: string, size: number, opts: TransferOptions): Promise<void> {
  const progress = progressFor(`put ${basename(local)}`, size);
  try {
    const result = await client.upload(local, remote, progress.listener);
    report('put', local, remote, result, opts);
  } finally {
    progress.stop();
  }
}

async function get(client: SluiceClient, remoteArg: string, local: string, opts: TransferOptions): Promise<void> {
  const remote = remotePath(remoteArg);
  const entry = await client.stat(remote);
  if (entry.fileType === 'DIR') {
    if (!opts.recursive) throw new SluiceError('IS_A_DIRECTORY', `${remote} is a directory; use --recursive`);
    await getTree(client, remote, local, opts);
    return;
  }
  const localIsDir = local.endsWith('/') || (await stat(local).catch(() => undefined))?.isDirectory() === true;
  const target = localIsDir ? join(local, basename(remote)) : local;
  await getFile(client, remote, target, entry.size, opts);
}

async function getTree(client: SluiceClient, remoteDir: string, localDir: string, opts: TransferOptions): Promise<void> {
  await mkdir(localDir, { recursive: true });
  const listing = await client.list(remoteDir);
  const children = [...(listing.children ?? [])].sort((a, b) => byName(a.fileName ?? '', b.fileName ?? ''));
  for (const child of children) {
    const name = child.fileName!;
    const remote = joinRemote(remoteDir, name);
    const local = join(localDir, name);
    if (child.fileType === 'DIR') await getTree(client, remote, local, opts);
    else if (child.fileType === 'REGULAR') await getFile(client, remote, local, child.size, opts);
    else printNote(`skipped ${remote}: ${child.fileType} is neither a file nor a directory`);
  }
}

async function getFile(client: SluiceClient, remote: string, local: string, size: number, opts: TransferOptions): Promise<void> {
  const progress = progressFor(`get ${basename(remote)}`, size);
  try {
    const result = await client.download(remote, local, progress.listener);
    report('get', local, remote, result, opts);
  } finally {
    progress.stop();
  }
}

function report(
  direction: 'put' | 'get',
  local: string,
  remote: string,
  result: TransferResult & { verified: boolean },
  opts: TransferOptions,
): void {
  if (!result.verified) printNote(`warning: the server sent no adler32 Digest for ${remote}; the transfer was not verified`);
  if (opts.json) return printJsonLine({ direction, local, remote, size: result.size, adler32: result.adler32, verified: result.verified });
  const [from, to] = direction === 'put' ? [local, remote] : [remote, local];
  printLine(`${from} -> ${to}  ${formatSize(result.size)}  adler32=${result.adler32}${result.verified ? ' verified' : ''}`);
}
