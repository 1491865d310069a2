#!/usr/bin/env node
// Precompiles the python runtime shim to bytecode (runtimes/python/__pycache__), so an instance
// starts as fast as a bare interpreter: the sandbox mounts the runtimes read-only, so nothing could
// write the cache at run time. Uses the interpreter the python runtime uses by default.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../runtimes/python', import.meta.url));
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const r = spawnSync(python, ['-m', 'compileall', '-q', dir], { stdio: 'inherit' });
if (r.error) console.warn(`precompile-runtimes: ${python} not found; python functions will start slower`);
else if (r.status !== 0) process.exit(r.status ?? 1);
