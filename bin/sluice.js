#!/usr/bin/env -S node --max-semi-space-size=4
// Entry point installed as `sluice`: tunes the runtime, then runs the compiled CLI.
// Every acknowledged write waits for fsyncs in libuv's thread pool; 4 threads (the default) leave
// concurrent uploads queueing behind each other. Must be set before the pool is first used.
process.env.UV_THREADPOOL_SIZE ??= '16';
// The shebang's --max-semi-space-size=4 keeps an idle server's young generation (and RSS) small.

await import('../dist/src/cli/main.js');
