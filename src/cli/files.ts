// Namespace commands over the REST API: `ls`, `stat`, `mkdir`, `mv`, `rm`.
import type { Command } from 'commander';
import { SluiceError } from '../errors.js';
import type { NamespaceEntry } from './client.js';
import { remotePath, withClient } from './connect.js';
import { byName, formatSize, formatTime, printJson, printLine, printTable } from './output.js';

export function registerFileCommands(program: Command): void {
  program
    .command('ls')
    .description('list a directory')
    .argument('[path]', 'namespace path', '/')
    .option('-l, --long', 'type, size, modification time and name')
    .option('--json', 'print the namespace API answer as JSON')
    .action(async (path: string, opts: { long?: boolean; json?: boolean }, cmd: Command) => {
      const entry = await withClient(cmd, (c) => c.list(remotePath(path)));
      if (opts.json) return printJson(entry);
      const rows = entry.fileType === 'DIR' ? (entry.children ?? []) : [{ ...entry, fileName: remotePath(path) }];
      rows.sort((a, b) => byName(a.fileName ?? '', b.fileName ?? ''));
      if (!opts.long) {
        for (const child of rows) printLine(displayName(child));
        return;
      }
      printTable(
        undefined,
        rows.map((child) => [
          child.fileType === 'DIR' ? 'd' : '-',
          child.fileType === 'DIR' ? '-' : formatSize(child.size),
          formatTime(child.mtime),
          displayName(child),
        ]),
      );
    });

  program
    .command('stat')
    .description('show size, checksums, locality, labels')
    .argument('<path>', 'namespace path')
    .option('--json', 'print the namespace API answer as JSON')
    .action(async (path: string, opts: { json?: boolean }, cmd: Command) => {
      const entry = await withClient(cmd, (c) => c.stat(remotePath(path), ['checksum', 'locality', 'qos', 'locations', 'labels', 'xattr']));
      if (opts.json) return printJson(entry);
      const rows: [string, string][] = [
        ['path', remotePath(path)],
        ['type', entry.fileType],
        ['size', entry.fileType === 'DIR' ? '-' : `${entry.size} (${formatSize(entry.size)})`],
        ['modified', formatTime(entry.mtime)],
        ['created', formatTime(entry.creationTime)],
        ['id', entry.pnfsId],
      ];
      if (entry.fileType !== 'DIR') rows.push(['mime type', entry.fileMimeType]);
      for (const c of entry.checksums ?? []) rows.push([`checksum ${c.type}`, c.value]);
      if (entry.fileLocality) rows.push(['locality', entry.fileLocality]);
      if (entry.currentQos) rows.push(['qos', entry.currentQos]);
      if (entry.locations && entry.locations.length > 0) rows.push(['locations', entry.locations.join(', ')]);
      if (entry.labels && entry.labels.length > 0) rows.push(['labels', entry.labels.join(', ')]);
      for (const [k, v] of Object.entries(entry.extendedAttributes ?? {})) rows.push([`xattr ${k}`, v]);
      printTable(
        undefined,
        rows.map(([k, v]) => [k + ':', v]),
      );
    });

  program
    .command('mkdir')
    .description('create a directory')
    .argument('<path>', 'namespace path')
    .option('-p, --parents', 'create missing parents; no error if the directory exists')
    .action(async (path: string, opts: { parents?: boolean }, cmd: Command) => {
      const target = remotePath(path);
      await withClient(cmd, async (c) => {
        try {
          await c.mkdir(target, { parents: opts.parents === true });
        } catch (e) {
          if (opts.parents && e instanceof SluiceError && (e.code === 'EXISTS' || e.code === 'CONFLICT')) {
            if ((await c.find(target))?.fileType === 'DIR') return;
          }
          throw e;
        }
      });
    });

  program
    .command('mv')
    .description('rename or move a file or directory')
    .argument('<source>', 'namespace path')
    .argument('<destination>', 'absolute path, or a new name in the same directory')
    .option('-f, --force', 'replace an existing destination')
    .action(async (source: string, destination: string, opts: { force?: boolean }, cmd: Command) => {
      await withClient(cmd, (c) => c.move(remotePath(source), destination, { overwrite: opts.force === true }));
    });

  program
    .command('rm')
    .description('delete a file or directory')
    .argument('<path>', 'namespace path')
    .option('-r, --recursive', 'delete a directory with everything below it')
    .action(async (path: string, opts: { recursive?: boolean }, cmd: Command) => {
      const target = remotePath(path);
      await withClient(cmd, (c) =>
        c.remove(target, { recursive: opts.recursive === true }).catch((e: unknown) => {
          if (e instanceof SluiceError && e.code === 'NOT_EMPTY')
            throw new SluiceError('NOT_EMPTY', `${target} is not empty; use --recursive`);
          throw e;
        }),
      );
    });
}

function displayName(entry: NamespaceEntry): string {
  const name = entry.fileName ?? '';
  return entry.fileType === 'DIR' ? name + '/' : name;
}
