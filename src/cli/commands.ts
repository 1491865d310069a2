// STUB: client commands (token, put, get, ls, stat, mv, rm, mkdir, events) — being written.
import type { Command } from 'commander';

export function registerClientCommands(_program: Command): void {}
