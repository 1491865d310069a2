#!/usr/bin/env node
// Entry point installed as `sluice`: runs the compiled CLI.
import '../dist/src/cli/main.js';
