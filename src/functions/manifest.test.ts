import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { handlerTarget, parseManifest, readManifest, validateManifest } from './manifest.js';

const base = { name: 'echo', runtime: 'node', handler: 'main.handler' };

function refused(raw: unknown, detail: RegExp): void {
  assert.throws(
    () => validateManifest(raw),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'BAD_REQUEST');
      assert.match(e.message, detail);
      return true;
    },
  );
}

async function bundle(files: Record<string, string | { text: string; mode: number }>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-manifest-'));
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    await mkdir(join(file, '..'), { recursive: true });
    const { text, mode } = typeof content === 'string' ? { text: content, mode: 0o644 } : content;
    await writeFile(file, text);
    await chmod(file, mode);
  }
  return dir;
}

test('defaults are filled in', () => {
  const m = validateManifest(base);
  assert.equal(m.limits.timeoutSeconds, 60);
  assert.equal(m.limits.memoryMb, 256);
  assert.equal(m.scaling.min, 0);
  assert.equal(m.scaling.max, 4);
  assert.equal(m.description, '');
  assert.deepEqual(m.env, {});
  assert.equal(m.network, false);
  assert.equal(m.scopes, undefined);
});

test('given values are kept and the input is not changed', () => {
  const raw = { ...base, limits: { timeoutSeconds: 0.5 }, scaling: { min: 1, max: 1 }, env: { A_1: 'x' } };
  const m = validateManifest(raw);
  assert.equal(m.limits.timeoutSeconds, 0.5);
  assert.equal(m.limits.memoryMb, 256);
  assert.deepEqual(raw.limits, { timeoutSeconds: 0.5 });
});

test('each mistake names its field', () => {
  refused({ ...base, limits: { timeoutSeconds: 0 } }, /limits\.timeoutSeconds must be > 0/);
  refused({ ...base, limts: {} }, /unknown field "limts"/);
  refused({ ...base, limits: { timeout: 3 } }, /unknown field "limits\.timeout"/);
  refused({ runtime: 'node', handler: 'main.handler' }, /missing field "name"/);
  refused({ ...base, name: 'Echo' }, /name "Echo" must be lower-case/);
  refused({ ...base, runtime: 'java' }, /runtime must be one of node, python, exec, custom/);
  refused({ ...base, limits: { memoryMb: 1.5 } }, /limits\.memoryMb must be an integer/);
  refused({ ...base, limits: { memoryMb: 8 } }, /limits\.memoryMb must be >= 16/);
  refused({ ...base, scaling: { max: 1000 } }, /scaling\.max must be <= 256/);
  refused({ ...base, scaling: { min: 3, max: 2 } }, /scaling\.min \(3\) must be <= scaling\.max \(2\)/);
  refused({ ...base, env: { B: 3 } }, /env\.B must be a string/);
  refused({ ...base, env: { '1x': 'a' } }, /env name "1x"/);
  refused({ ...base, scopes: [1] }, /scopes\[0\] must be a string/);
  refused({ ...base, network: 'yes' }, /network must be true or false/);
  refused({ ...base, handler: '' }, /handler must not be empty/);
  refused([base], /must be an object/);
});

test('several mistakes are reported together', () => {
  refused({ ...base, limts: {}, retries: -1 }, /unknown field "limts"; retries must be >= 0/);
});

test('node and python handlers are module.function with identifiers; module dots are directories', () => {
  assert.deepEqual(handlerTarget('node', 'main.handler'), {
    kind: 'module',
    module: 'main',
    export: 'handler',
    candidates: ['main.mjs', 'main.js', 'main.cjs'],
  });
  assert.deepEqual(handlerTarget('python', 'pkg.mod.run'), {
    kind: 'module',
    module: 'pkg/mod',
    export: 'run',
    candidates: ['pkg/mod.py', 'pkg/mod/__init__.py'],
  });
  assert.equal((handlerTarget('node', 'main.$run') as { export: string }).export, '$run');
  refused({ ...base, handler: 'main' }, /handler "main" must be module\.function/);
  refused({ ...base, handler: 'my-mod.run' }, /module part "my-mod" is not an identifier/);
  refused({ ...base, runtime: 'python', handler: 'main.$run' }, /function "\$run" is not an identifier/);
  refused({ ...base, handler: '../x.run' }, /module part "" is not an identifier/);
});

test('exec and custom handlers are relative paths without ..', () => {
  assert.deepEqual(handlerTarget('exec', './bin/run.sh'), { kind: 'file', path: 'bin/run.sh' });
  refused({ ...base, runtime: 'exec', handler: '/bin/sh' }, /must be a path relative to the bundle root/);
  refused({ ...base, runtime: 'custom', handler: 'bin/../../x' }, /must not contain "\.\."/);
  refused({ ...base, runtime: 'exec', handler: './' }, /must name a file/);
});

test('YAML and JSON manifests parse to the same thing; syntax errors name the file', () => {
  const yaml = parseManifest('name: echo\nruntime: node\nhandler: main.handler\nlimits:\n  timeoutSeconds: 5\n', 'sluice.function.yaml');
  const json = parseManifest(JSON.stringify({ ...base, limits: { timeoutSeconds: 5 } }), 'sluice.function.json');
  assert.deepEqual(yaml, json);
  assert.throws(() => parseManifest('{"name": ', 'sluice.function.json'), /sluice\.function\.json: not valid JSON/);
  assert.throws(() => parseManifest('name: [', 'sluice.function.yml'), /sluice\.function\.yml: not valid YAML/);
  assert.throws(() => parseManifest('name: echo\nruntime: node\nhandler: main.handler\nlimts: 1\n', 'sluice.function.yml'), {
    message: 'sluice.function.yml: unknown field "limts"',
  });
});

test('readManifest checks the handler against the bundle files', async () => {
  const dirs: string[] = [];
  const make = async (files: Parameters<typeof bundle>[0]) => {
    const d = await bundle(files);
    dirs.push(d);
    return d;
  };
  try {
    const ok = await make({ 'sluice.function.json': JSON.stringify(base), 'main.mjs': 'export const handler = () => 1;' });
    assert.equal((await readManifest(ok)).manifest.name, 'echo');
    const cjs = await make({ 'sluice.function.yaml': 'name: e\nruntime: node\nhandler: lib.sub.h\n', 'lib/sub.cjs': '' });
    assert.equal((await readManifest(cjs)).file, 'sluice.function.yaml');
    const py = await make({ 'sluice.function.yml': 'name: p\nruntime: python\nhandler: main.handler\n', 'main.py': '' });
    assert.equal((await readManifest(py)).manifest.runtime, 'python');

    const noModule = await make({ 'sluice.function.json': JSON.stringify(base), 'other.mjs': '' });
    await assert.rejects(readManifest(noModule), /handler "main.handler" needs main\.mjs, main\.js, main\.cjs in the bundle/);
    const noPy = await make({ 'sluice.function.json': JSON.stringify({ ...base, runtime: 'python' }) });
    await assert.rejects(readManifest(noPy), /needs main\.py or main\/__init__\.py/);

    const exec = { ...base, runtime: 'exec', handler: 'bin/run.sh' };
    const notExec = await make({ 'sluice.function.json': JSON.stringify(exec), 'bin/run.sh': '#!/bin/sh\n' });
    await assert.rejects(readManifest(notExec), /handler "bin\/run\.sh" is not executable \(chmod \+x bin\/run\.sh\)/);
    const missing = await make({ 'sluice.function.json': JSON.stringify(exec) });
    await assert.rejects(readManifest(missing), /handler "bin\/run\.sh" not found in the bundle/);
    const dirHandler = await make({ 'sluice.function.json': JSON.stringify({ ...exec, handler: 'bin' }), 'bin/x': '' });
    await assert.rejects(readManifest(dirHandler), /handler "bin" is not a regular file/);
    const good = await make({ 'sluice.function.json': JSON.stringify(exec), 'bin/run.sh': { text: '#!/bin/sh\n', mode: 0o755 } });
    assert.equal((await readManifest(good)).manifest.runtime, 'exec');

    await assert.rejects(readManifest(await make({ 'main.mjs': '' })), /no manifest: the bundle root needs one of sluice\.function\.json/);
    const two = await make({ 'sluice.function.json': JSON.stringify(base), 'sluice.function.yaml': '', 'main.mjs': '' });
    await assert.rejects(readManifest(two), /several manifests \(sluice\.function\.json, sluice\.function\.yaml\)/);
  } finally {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});
