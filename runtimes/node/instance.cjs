// The sluice node runtime: hosts one function version as a warm instance speaking instance protocol v1
// (docs/function-protocol.md). Messages from sluice arrive as NDJSON on stdin; answers leave as NDJSON
// on fd 3; console output inside a handler becomes `log` messages of its activation.
//
// Cold start is measured against bare `node -e 0`, which shapes three choices here:
// - This entry is CommonJS: an ES module entry starts node's ESM loader, a fifth of a bare start.
// - The handler is loaded with require(), which node ≥ 20.19 also applies to ES modules, without the
//   ESM loader; import() remains for what require() cannot load (top-level await, older node).
// - Answers go out with writeSync on fd 3 (one syscall, no stream machinery); a non-blocking fd 3
//   that fills up switches to a socket on the first EAGAIN. stdin is a net socket on fd 0, not
//   process.stdin (which adds its own setup), and never fs.read in the thread pool: a read blocked
//   there would keep process.exit from returning until stdin closes.
'use strict';
/* global require, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose, see above */

const { existsSync, fstatSync, writeSync } = require('node:fs');
const { AsyncLocalStorage } = require('node:async_hooks');
const { join, resolve } = require('node:path');
const { pathToFileURL } = require('node:url');
const { format } = require('node:util');

const PROTOCOL = 1;
const IN_FD = 0;
const OUT_FD = 3;
const MODULE_EXTENSIONS = ['.mjs', '.js', '.cjs'];
// Mirrors the methods of storage.mjs, which is loaded only when a handler first calls one.
const STORAGE_METHODS = ['read', 'readText', 'write', 'stat', 'list', 'mkdir', 'remove', 'download', 'upload'];

/** The activation whose handler code is running, across awaits, timers and callbacks. */
const current = new AsyncLocalStorage();
const writeStderr = console.error.bind(console);

let state = 'new'; // new → loading → ready
let handler;
let inFlight = 0;
let inputEnded = false;
let exiting = false;
/** Invokes that arrived before the handler was loaded. */
const early = [];

// ---- messages to sluice on fd 3 ----

/**
 * Set once fd 3 refused a write (a non-blocking socketpair whose buffer is full): a socket over fd 3
 * that queues the rest in order. Until then writes are synchronous, one syscall per message.
 */
let outSocket;

function send(line) {
  const buf = Buffer.from(line, 'utf8');
  if (outSocket) {
    outSocket.write(buf);
    return;
  }
  let offset = 0;
  while (offset < buf.length) {
    try {
      offset += writeSync(OUT_FD, buf, offset, buf.length - offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') return lostSluice(err);
      const { Socket } = require('node:net');
      outSocket = new Socket({ fd: OUT_FD, readable: false, writable: true });
      outSocket.on('error', lostSluice);
      outSocket.write(buf.subarray(offset));
      return;
    }
  }
}

/** fd 3 is gone: nobody is left to answer, so stop instead of computing results no one reads. */
function lostSluice(err) {
  writeStderr(`sluice runtime: cannot write to fd ${OUT_FD} (${err.code ?? err.message}); exiting`);
  process.exit(1);
}

const quote = JSON.stringify;

function sendLog(id, level, message) {
  send(`{"type":"log","id":${quote(id)},"level":"${level}","message":${quote(message)}}\n`);
}

/** An Error (or anything thrown) as the protocol's {name, message, stack}. */
function errorOf(thrown) {
  try {
    if (thrown !== null && typeof thrown === 'object' && typeof thrown.message === 'string') {
      const out = { name: typeof thrown.name === 'string' ? thrown.name : 'Error', message: thrown.message };
      if (typeof thrown.stack === 'string') out.stack = thrown.stack;
      return out;
    }
    // `throw "text"` and friends: no stack exists, keep what was thrown readable.
    if (typeof thrown === 'string') return { name: 'Error', message: thrown };
    return { name: 'Error', message: `non-Error thrown: ${safeDescribe(thrown)}` };
  } catch (err) {
    return { name: 'Error', message: `the thrown value could not be described: ${String(err)}` };
  }
}

function safeDescribe(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// ---- console inside activations ----

const CONSOLE_LEVELS = { log: 'info', info: 'info', warn: 'warn', error: 'error', debug: 'debug' };
for (const [method, level] of Object.entries(CONSOLE_LEVELS)) {
  console[method] = (...args) => {
    const activation = current.getStore();
    // Outside any activation (module top level, stray timers) output stays instance log on stderr.
    if (activation === undefined) writeStderr(...args);
    else sendLog(activation.id, level, format(...args));
  };
}

// stdin belongs to the protocol: code in the handler that reads process.stdin gets an empty stream.
const processStdin = Object.getOwnPropertyDescriptor(process, 'stdin').get;
let emptyStdin;
Object.defineProperty(process, 'stdin', {
  configurable: true,
  enumerable: true,
  get: () => (emptyStdin ??= require('node:stream').Readable.from([])),
});

// ---- loading code ----

/** A module by absolute path, ES module or CommonJS: require() where it can, import() where it must. */
async function loadModule(file) {
  try {
    return require(file);
  } catch (err) {
    if (err?.code !== 'ERR_REQUIRE_ESM' && err?.code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
  }
  return import(pathToFileURL(file).href);
}

async function loadHandler(spec) {
  const dot = spec.lastIndexOf('.');
  if (dot <= 0 || dot === spec.length - 1) throw new TypeError(`handler "${spec}" is not of the form module.function`);
  const modulePath = spec.slice(0, dot);
  const name = spec.slice(dot + 1);
  // "lib/jobs.run" and "lib.jobs.run" both name lib/jobs.{mjs,js,cjs}, as python names lib/jobs.py.
  const bases = [...new Set([modulePath, modulePath.replaceAll('.', '/')])];
  const candidates = bases.flatMap((base) => MODULE_EXTENSIONS.map((ext) => base + ext));
  const file = candidates.find((c) => existsSync(c));
  if (file === undefined) {
    const err = new Error(`handler module not found: none of ${candidates.join(', ')} exists in ${process.cwd()}`);
    err.name = 'ModuleNotFoundError';
    throw err;
  }
  const mod = await loadModule(resolve(file));
  // CommonJS modules whose exports node cannot detect statically expose them on the default export.
  const fn = typeof mod[name] === 'function' ? mod[name] : mod.default?.[name];
  if (typeof fn !== 'function') throw new TypeError(`${file} does not export a function named "${name}"`);
  return fn;
}

async function init(msg) {
  if (state !== 'new') {
    writeStderr('sluice runtime: ignoring a second init message');
    return;
  }
  state = 'loading';
  try {
    if (msg.protocol !== PROTOCOL) throw new Error(`instance protocol ${msg.protocol} is not supported; this runtime speaks ${PROTOCOL}`);
    for (const [key, value] of Object.entries(msg.env ?? {})) process.env[key] = String(value);
    handler = await loadHandler(String(msg.handler));
  } catch (err) {
    send(`{"type":"init_error","error":${quote(errorOf(err))}}\n`);
    exit(1);
    return;
  }
  state = 'ready';
  send('{"type":"ready"}\n');
  for (const m of early.splice(0)) invoke(m);
  exitIfDone();
}

// ---- invocations ----

/** ctx given to handlers; one per activation. */
class Context {
  #storageConfig;
  #storage;
  #log;

  constructor(msg) {
    this.activationId = msg.id;
    this.functionName = msg.function;
    this.version = msg.version;
    this.deadline = Number(msg.deadline);
    this.#storageConfig = msg.storage;
  }

  remainingMs() {
    return Math.max(0, this.deadline - Date.now());
  }

  get log() {
    const id = this.activationId;
    return (this.#log ??= {
      debug: (...args) => sendLog(id, 'debug', format(...args)),
      info: (...args) => sendLog(id, 'info', format(...args)),
      warn: (...args) => sendLog(id, 'warn', format(...args)),
      error: (...args) => sendLog(id, 'error', format(...args)),
    });
  }

  get storage() {
    return (this.#storage ??= lazyStorage(this.#storageConfig));
  }
}

/** ctx.storage: the client's methods, the client itself loaded when the first one is called. */
function lazyStorage(config) {
  let client;
  const load = () =>
    (client ??= config?.socket
      ? loadModule(join(__dirname, 'storage.mjs')).then((m) => m.createStorage(config))
      : Promise.reject(new Error('this activation was given no storage API')));
  const facade = {};
  for (const method of STORAGE_METHODS) facade[method] = async (...args) => (await load())[method](...args);
  return facade;
}

function invoke(msg) {
  if (typeof msg.id !== 'string' || msg.id === '') {
    writeStderr('sluice runtime: ignoring an invoke message without an id');
    return;
  }
  inFlight++;
  const activation = { id: msg.id, done: false };
  void current.run(activation, run, activation, msg);
}

async function run(activation, msg) {
  let value;
  try {
    value = await handler(msg.event, new Context(msg));
  } catch (err) {
    fail(activation, err);
    return;
  }
  let json;
  try {
    // undefined (and functions, symbols) have no JSON form; a handler returning nothing answers null.
    json = JSON.stringify(value) ?? 'null';
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err);
    fail(activation, { name: 'TypeError', message: `the handler's result is not JSON-serializable: ${cause}` });
    return;
  }
  settle(activation, `{"type":"result","id":${quote(activation.id)},"result":${json}}\n`);
}

function fail(activation, thrown) {
  settle(activation, `{"type":"error","id":${quote(activation.id)},"error":${quote(errorOf(thrown))}}\n`);
}

/** Sends the one answer of an activation; later answers (a stray exception after the result) are dropped. */
function settle(activation, line) {
  if (activation.done) return;
  activation.done = true;
  send(line);
  inFlight--;
  exitIfDone();
}

/** Exceptions nobody caught fail the activation whose code raised them; the instance lives on. */
function strayError(err) {
  const activation = current.getStore();
  if (activation === undefined) writeStderr('sluice runtime: uncaught exception outside any activation:', err);
  else if (!activation.done) fail(activation, err);
  else sendLog(activation.id, 'error', `uncaught exception after the result: ${format(err)}`);
}
process.on('uncaughtException', strayError);
process.on('unhandledRejection', strayError);

// ---- stdin ----

function receive(line) {
  let msg;
  try {
    msg = JSON.parse(line.toString('utf8'));
  } catch (err) {
    writeStderr(`sluice runtime: ignoring a line that is not JSON (${err.message})`);
    return;
  }
  switch (msg?.type) {
    case 'invoke':
      if (state === 'ready') invoke(msg);
      else early.push(msg);
      return;
    case 'init':
      void init(msg);
      return;
    default:
      writeStderr(`sluice runtime: ignoring a message of unknown type ${quote(msg?.type)}`);
  }
}

/** Pieces of the line not yet ended by a newline; a line of many megabytes arrives in many reads. */
let partial = [];

/** Handles one chunk of stdin. */
function onInput(chunk) {
  let start = 0;
  let nl;
  while ((nl = chunk.indexOf(10, start)) !== -1) {
    let line = chunk.subarray(start, nl);
    if (partial.length > 0) {
      partial.push(line);
      line = Buffer.concat(partial);
      partial = [];
    }
    start = nl + 1;
    if (line.length > 0) receive(line);
  }
  if (start < chunk.length) partial.push(chunk.subarray(start));
}

function onInputEnd(err) {
  if (inputEnded) return;
  if (err) writeStderr(`sluice runtime: stdin failed (${err.code ?? err.message}); finishing`);
  if (partial.length > 0) receive(Buffer.concat(partial.splice(0)));
  inputEnded = true;
  exitIfDone();
}

/** Reads stdin: a pipe or socket directly through net (what process.stdin would build, minus its setup). */
function openInput() {
  let input;
  try {
    const kind = fstatSync(IN_FD);
    input =
      kind.isFIFO() || kind.isSocket()
        ? new (require('node:net').Socket)({ fd: IN_FD, readable: true, writable: false })
        : processStdin.call(process); // a file or terminal, when someone runs the runtime by hand
  } catch (err) {
    onInputEnd(err);
    return;
  }
  input.on('data', onInput);
  input.on('end', () => onInputEnd());
  input.on('error', onInputEnd);
}
openInput();

// ---- shutdown ----

/** On EOF of stdin: once the handler is loaded and every call answered, exit even if timers remain. */
function exitIfDone() {
  if (inputEnded && inFlight === 0 && state !== 'loading') exit(0);
}

function exit(code) {
  if (exiting) return;
  exiting = true;
  if (outSocket) outSocket.end(() => process.exit(code));
  else process.exit(code);
}
