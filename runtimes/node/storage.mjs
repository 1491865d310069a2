// ctx.storage for node handlers: the sluice namespace over the API socket given with each invoke.
// Files move through the WebDAV door (GET/PUT/MKCOL/DELETE at /<path>), attributes come from the
// dCache-compatible namespace API (/api/v1/namespace/<path>). Bodies stream; nothing is buffered
// beyond what the caller asks for as a Buffer or string.
import { request } from 'node:http';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat as statFile, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/** A refusal by sluice: the HTTP status and the server's own explanation. */
export class StorageError extends Error {
  constructor(method, path, status, detail) {
    super(`${method} ${path}: ${status}${detail ? ` ${detail}` : ''}`);
    this.name = 'StorageError';
    this.status = status;
    this.detail = detail;
  }
}

/** The segments of a namespace path: "." dropped and ".." refused, so a path names what it looks like. */
function segmentsOf(path) {
  if (typeof path !== 'string') throw new TypeError(`a storage path must be a string, not ${typeof path}`);
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new TypeError(`a storage path must not contain "..": ${path}`);
  return segments;
}

/** A namespace path as a URL path, each segment percent-encoded. */
export function encodePath(path) {
  return '/' + segmentsOf(path).map(encodeURIComponent).join('/');
}

/** The detail of an RFC 7807 body (API), or the text body (WebDAV door). */
function detailOf(body, contentType) {
  const text = body.toString('utf8').trim();
  if (contentType && /json/.test(contentType)) {
    try {
      const problem = JSON.parse(text);
      return String(problem.detail ?? problem.title ?? text);
    } catch {
      // not the JSON it claimed to be: fall back to the text
    }
  }
  return text.slice(0, 2000);
}

/**
 * The storage client of one activation. `socket` is the API's unix socket and `token` the bearer token
 * sluice issued for this activation (its scopes bound what the handler may touch).
 */
export function createStorage({ socket, token }) {
  /**
   * One request to `target` (an encoded URL path; `path` names it in errors). `body` is a Buffer/string
   * or a readable stream; `sink` (a writable stream) receives a successful response body instead of it
   * being collected. Resolves to {status, headers, body}.
   */
  function call(method, target, path, { headers = {}, body, sink } = {}) {
    return new Promise((resolvePromise, reject) => {
      const req = request(
        { socketPath: socket, method, path: target, headers: { authorization: `Bearer ${token}`, ...headers } },
        (res) => {
          const status = res.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          if (ok && sink) {
            pipeline(res, sink).then(() => resolvePromise({ status, headers: res.headers }), reject);
            return;
          }
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const data = Buffer.concat(chunks);
            if (ok) resolvePromise({ status, headers: res.headers, body: data });
            else reject(new StorageError(method, path, status, detailOf(data, res.headers['content-type'])));
          });
        },
      );
      req.on('error', reject);
      if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) req.end(body);
      else pipeline(body, req).catch(reject);
    });
  }

  const door = (method, path, options) => call(method, encodePath(path), path, options);
  const attributes = async (path, query) => JSON.parse((await call('GET', `/api/v1/namespace${encodePath(path)}${query}`, path)).body);

  async function put(path, body, contentType, length) {
    const headers = {};
    if (contentType) headers['content-type'] = contentType;
    if (length !== undefined) headers['content-length'] = String(length);
    const res = await door('PUT', path, { headers, body });
    return { created: res.status === 201, etag: res.headers.etag };
  }

  async function mkdir(path, { parents = true } = {}) {
    try {
      await door('MKCOL', path);
      return;
    } catch (err) {
      if (!parents || !(err instanceof StorageError)) throw err;
      if (err.status === 405) return mustBeDirectory(path, err);
      if (err.status !== 409 && err.status !== 404) throw err;
      const segments = segmentsOf(path);
      if (segments.length < 2) throw err;
      await mkdir('/' + segments.slice(0, -1).join('/'), { parents });
    }
    // The parents exist now; someone may have created this directory meanwhile, which is fine.
    await door('MKCOL', path).catch((err) =>
      err instanceof StorageError && err.status === 405 ? mustBeDirectory(path, err) : Promise.reject(err),
    );
  }

  /** MKCOL answers 405 for anything that exists: fine for mkdir -p only if it is a directory. */
  async function mustBeDirectory(path, err) {
    const { fileType } = await attributes(path, '');
    if (fileType !== 'DIR') throw new StorageError('MKCOL', path, err.status, `${path} exists and is not a directory`);
  }

  return {
    /** The file's bytes as a Buffer. */
    async read(path) {
      return (await door('GET', path)).body;
    },
    /** The file as text (utf-8 unless told otherwise). */
    async readText(path, encoding = 'utf8') {
      return (await door('GET', path)).body.toString(encoding);
    },
    /** Creates or replaces a file from a string, a Buffer/Uint8Array or a readable stream. */
    write(path, data, { contentType } = {}) {
      const length = typeof data === 'string' || data instanceof Uint8Array ? Buffer.byteLength(data) : undefined;
      return put(path, data, contentType, length);
    },
    /** dCache-style attributes with checksums: {fileType, size, mtime, checksums: [{type, value}], …}. */
    stat: (path) => attributes(path, '?checksum=true'),
    /** The entries of a directory, each with fileName, fileType, size, mtime, …. */
    async list(path) {
      return (await attributes(path, '?children=true')).children ?? [];
    },
    /** Creates a directory; with parents (the default) also every missing ancestor, and an existing directory is fine. */
    mkdir,
    /** Deletes a file, or a directory with everything below it. */
    async remove(path) {
      await door('DELETE', path);
    },
    /** Streams a file into a local file; nothing partial is left behind on failure. */
    async download(path, localFile) {
      const sink = createWriteStream(localFile);
      try {
        await door('GET', path, { sink });
      } catch (err) {
        sink.destroy();
        await unlink(localFile).catch(() => {});
        throw err;
      }
    },
    /** Streams a local file into the namespace. */
    async upload(localFile, path, { contentType } = {}) {
      const { size } = await statFile(localFile);
      return put(path, createReadStream(localFile), contentType, size);
    },
  };
}
