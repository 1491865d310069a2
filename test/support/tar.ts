// Test support: tar.gz archives byte for byte, including the malicious ones no well-behaved packer
// writes (.. paths, absolute paths, links, devices). Headers are encoded by the `tar` package itself.
import { gzipSync } from 'node:zlib';
import { Header, type HeaderData } from 'tar';

export interface RawEntry {
  path: string;
  type?: HeaderData['type'];
  body?: string | Buffer;
  mode?: number;
  linkpath?: string;
  mtime?: Date;
}

/** An uncompressed tar stream of the given entries, in the given order. */
export function rawTar(entries: readonly RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    const type = e.type ?? 'File';
    const header = new Header({
      path: e.path,
      type,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      size: type === 'File' ? body.length : 0,
      mtime: e.mtime ?? new Date(1_700_000_000_000),
      uid: 1000,
      gid: 1000,
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    if (header.encode(block, 0)) throw new Error(`test archive: ${e.path} needs a pax header; keep test paths short`);
    blocks.push(block);
    if (type === 'File' && body.length > 0) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export const tarGz = (entries: readonly RawEntry[]): Buffer => gzipSync(rawTar(entries));

/** A minimal valid node bundle's entries, for a function called `name`. */
export function nodeBundle(name: string, extra: Record<string, unknown> = {}, code = 'export const handler = (e) => e;\n'): RawEntry[] {
  return [
    { path: 'sluice.function.json', body: JSON.stringify({ name, runtime: 'node', handler: 'main.handler', ...extra }) },
    { path: 'main.mjs', body: code },
  ];
}
