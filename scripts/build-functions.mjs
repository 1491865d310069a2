#!/usr/bin/env node
// Builds the bundles of the built-in functions in functions/: each function's package.json names what
// it needs at run time, and this script copies exactly that into functions/<name>/node_modules/ —
// the shared code (functions/shared, as @sluice/builtins) and the run-time files of each npm package,
// taken from the repository's own node_modules (so versions are the ones package-lock.json pins).
// Functions run without network and see only their bundle, so everything must be inside it; the
// lists below keep the bundles small (the node build of h5wasm, not its browser builds and sources).
// Run by npm run build, npm test and npm ci (prepare); a bundle whose inputs did not change is left
// as it is, so the same inputs always give byte-identical bundles (and the same function version).
//
//   node scripts/build-functions.mjs            build every bundle
//   node scripts/build-functions.mjs thumbnail  build one
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FUNCTIONS = join(ROOT, 'functions');
const NODE_MODULES = join(ROOT, 'node_modules');
/** Written into each built node_modules: the digest of what it was built from. */
const STAMP = '.sluice-build.json';

/**
 * What each vendored npm package needs at run time, besides package.json and its licence: paths, or
 * patterns matched against the names at the package's top level. A package not listed here is
 * refused, so nothing big slips into a bundle unnoticed.
 */
const RUNTIME_FILES = {
  h5wasm: ['dist/node'], // hdf5_hl.js + hdf5_util.js (the WebAssembly is inlined)
  // HDF5 filter plugins detectors write with: bitshuffle/LZ4 (DECTRIS EIGER), LZ4, Blosc, Zstandard
  'h5wasm-plugins': ['index.mjs', ...['bshuf', 'lz4', 'blosc', 'zstd'].map((p) => `plugins/libH5Z${p}.so`)],
  pngjs: ['lib'],
  geotiff: ['dist-module'], // the ES module build; its decoders load on demand
  '@petamoriken/float16': ['src'],
  lerc: ['LercDecode.js'],
  pako: ['dist/pako.esm.mjs'],
  'parse-headers': ['parse-headers.js'],
  'quick-lru': ['index.js'],
  'web-worker': ['src/node'],
  'xml-utils': [/\.mjs$/],
  zstddec: ['dist/zstddec.modern.js', 'dist/zstddec-stream.modern.js'],
};
const LICENSE_RE = /^(licen[cs]e|copying|notice)(\..*)?$/i;
/** Never needed at run time: type declarations and source maps. */
const SKIP_RE = /\.(d\.[cm]?ts|map)$/;

async function readJson(file) {
  return JSON.parse(await readFile(file, 'utf8'));
}

async function sizeOf(path) {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const entry of await readdir(path)) total += await sizeOf(join(path, entry));
  return total;
}

/** Every file below a directory (node_modules excepted), sorted, as paths relative to it. */
async function filesBelow(dir, prefix = '') {
  const out = [];
  for (const entry of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name === 'node_modules') continue;
    const rel = join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...(await filesBelow(dir, rel)));
    else out.push(rel);
  }
  return out;
}

/**
 * What goes into one bundle's node_modules: local packages (file: dependencies) and npm packages
 * with their dependencies, resolved in the repository's flat node_modules.
 */
async function planOf(dir, rootDeps) {
  const fnPkgFile = join(dir, 'package.json');
  const deps = existsSync(fnPkgFile) ? ((await readJson(fnPkgFile)).dependencies ?? {}) : {};
  const local = [];
  const npm = new Map();
  async function addNpm(name) {
    if (npm.has(name)) return;
    const source = join(NODE_MODULES, name);
    if (!existsSync(join(source, 'package.json'))) {
      throw new Error(`${name} is not installed in ${NODE_MODULES}: run npm ci (it must be a dependency in package.json)`);
    }
    if (!RUNTIME_FILES[name]) throw new Error(`no run-time file list for ${name}: add one to RUNTIME_FILES in scripts/build-functions.mjs`);
    const pkg = await readJson(join(source, 'package.json'));
    npm.set(name, { source, version: pkg.version });
    for (const dep of Object.keys(pkg.dependencies ?? {})) await addNpm(dep);
  }
  for (const [name, spec] of Object.entries(deps)) {
    if (spec.startsWith('file:')) {
      local.push({ name, source: resolve(dir, spec.slice('file:'.length)) });
      continue;
    }
    if (rootDeps[name] !== spec) {
      throw new Error(`${dir}/package.json wants ${name}@${spec}, but the root package.json has ${rootDeps[name] ?? 'no such dependency'}`);
    }
    await addNpm(name);
  }
  return { local, npm };
}

/** A digest of everything a bundle's node_modules is made from: the same inputs give the same stamp. */
async function stampOf(plan) {
  const hash = createHash('sha256');
  hash.update(await readFile(fileURLToPath(import.meta.url)));
  for (const { name, source } of plan.local) {
    hash.update(`local ${name}\n`);
    for (const file of await filesBelow(source)) hash.update(`${file}\n`).update(await readFile(join(source, file)));
  }
  for (const [name, { version }] of [...plan.npm].sort(([a], [b]) => a.localeCompare(b))) hash.update(`npm ${name}@${version}\n`);
  return hash.digest('hex');
}

/** Copies the run-time files of an npm package into `target`. */
async function vendorPackage(name, source, target) {
  const dest = join(target, name);
  await mkdir(dest, { recursive: true });
  const top = await readdir(source);
  const licenses = top.filter((f) => LICENSE_RE.test(f));
  const wanted = RUNTIME_FILES[name].flatMap((f) => (typeof f === 'string' ? [f] : top.filter((n) => f.test(n))));
  for (const file of ['package.json', ...licenses, ...wanted]) {
    await mkdir(dirname(join(dest, file)), { recursive: true });
    await cp(join(source, file), join(dest, file), { recursive: true, filter: (src) => !SKIP_RE.test(src) });
  }
}

/**
 * Builds functions/<name>/node_modules unless its stamp says it is current. The new tree is made
 * beside the old one and swapped in by renames, so a test deploying the bundle meanwhile, or a
 * second build running at the same time, never sees a half-copied tree.
 */
async function buildOne(name, rootDeps) {
  const dir = join(FUNCTIONS, name);
  const target = join(dir, 'node_modules');
  const plan = await planOf(dir, rootDeps);
  if (plan.local.length === 0 && plan.npm.size === 0) {
    await rm(target, { recursive: true, force: true });
    return { bytes: await sizeOf(dir), built: false };
  }
  const stamp = await stampOf(plan);
  const stampFile = join(target, STAMP);
  if (existsSync(stampFile) && (await readJson(stampFile)).stamp === stamp) return { bytes: await sizeOf(dir), built: false };

  const scratch = join(FUNCTIONS, 'node_modules'); // ignored by git like every node_modules
  const staging = join(scratch, `.staging-${name}-${process.pid}`);
  const old = join(scratch, `.old-${name}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    for (const { name: pkg, source } of plan.local) {
      await cp(source, join(staging, pkg), { recursive: true, filter: (src) => !src.split('/').includes('node_modules') });
    }
    for (const [pkg, { source }] of plan.npm) await vendorPackage(pkg, source, staging);
    await writeFile(join(staging, STAMP), JSON.stringify({ stamp }) + '\n');
    await rename(target, old).catch((err) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    // Another build may have put the same tree in place since: then ours is not needed.
    await rename(staging, target).catch((err) => (['ENOTEMPTY', 'EEXIST'].includes(err.code) ? undefined : Promise.reject(err)));
  } finally {
    await rm(staging, { recursive: true, force: true });
    await rm(old, { recursive: true, force: true });
    await rmdir(scratch).catch(() => {}); // only if empty: another build may be using it
  }
  return { bytes: await sizeOf(dir), built: true };
}

async function main() {
  const rootPkg = await readJson(join(ROOT, 'package.json'));
  const rootDeps = { ...rootPkg.devDependencies, ...rootPkg.dependencies };
  const wanted = process.argv.slice(2);
  const names = (await readdir(FUNCTIONS, { withFileTypes: true }))
    .filter((d) => d.isDirectory() && existsSync(join(FUNCTIONS, d.name, 'sluice.function.json')))
    .map((d) => d.name)
    .filter((n) => wanted.length === 0 || wanted.includes(n))
    .sort();
  for (const n of wanted) if (!names.includes(n)) throw new Error(`no built-in function ${n} in ${FUNCTIONS}`);
  for (const name of names) {
    const { bytes, built } = await buildOne(name, rootDeps);
    console.log(`functions/${name}: ${(bytes / 1024 / 1024).toFixed(1)} MiB${built ? '' : ' (up to date)'}`);
  }
}

main().catch((err) => {
  console.error(`build-functions: ${err.message}`);
  process.exit(1);
});
