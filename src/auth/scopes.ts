// WLCG-style scopes and the checks every door and API route applies.
// storage.read:/p reads under /p; storage.create:/p adds new files and directories under /p;
// storage.modify:/p changes anything under /p (which includes creating); admin may do everything.
import { SluiceError } from '../errors.js';
import { isWithin, normalizePath } from '../storage/paths.js';

export const STORAGE_SCOPES = ['storage.read', 'storage.create', 'storage.modify', 'storage.stage'] as const;
export const PLAIN_SCOPES = ['admin', 'function.invoke', 'function.deploy'] as const;

export type StorageScopeKind = (typeof STORAGE_SCOPES)[number];
export type PlainScopeKind = (typeof PLAIN_SCOPES)[number];
export type Scope = { kind: StorageScopeKind; path: string } | { kind: PlainScopeKind };

export type StorageAction = 'read' | 'create' | 'modify' | 'stage';

/** Principals of activation tokens have token ids `activation:<activation id>`. */
export const ACTIVATION_TOKEN_ID_PREFIX = 'activation:';

export interface Principal {
  /** Who the token was issued to. */
  subject: string;
  tokenId: string;
  scopes: Scope[];
  /** When the token expires (ms since the epoch); undefined if it does not. */
  expires?: number;
}

export function parseScope(text: string): Scope {
  const t = text.trim();
  if ((PLAIN_SCOPES as readonly string[]).includes(t)) return { kind: t as PlainScopeKind };
  const colon = t.indexOf(':');
  const kind = colon < 0 ? t : t.slice(0, colon);
  if (!(STORAGE_SCOPES as readonly string[]).includes(kind)) {
    throw new SluiceError('BAD_REQUEST', `unknown scope "${text}"; known: ${[...STORAGE_SCOPES, ...PLAIN_SCOPES].join(', ')}`);
  }
  const rawPath = colon < 0 ? '/' : t.slice(colon + 1) || '/';
  return { kind: kind as StorageScopeKind, path: normalizePath(rawPath) };
}

export function formatScope(s: Scope): string {
  return 'path' in s ? `${s.kind}:${s.path}` : s.kind;
}

export const isAdmin = (p: Principal): boolean => p.scopes.some((s) => s.kind === 'admin');

/** Which scope kinds grant an action. */
const GRANTS: Record<StorageAction, readonly StorageScopeKind[]> = {
  read: ['storage.read'],
  create: ['storage.create', 'storage.modify'],
  modify: ['storage.modify'],
  stage: ['storage.stage', 'storage.read'],
};

export function mayStorage(p: Principal, action: StorageAction, path: string): boolean {
  if (isAdmin(p)) return true;
  const kinds = GRANTS[action];
  return p.scopes.some((s) => 'path' in s && kinds.includes(s.kind) && isWithin(path, s.path));
}

export function requireStorage(p: Principal, action: StorageAction, path: string): void {
  if (!mayStorage(p, action, path)) {
    throw new SluiceError('FORBIDDEN', `token has no scope allowing ${action} of ${path}`);
  }
}

export function requireScope(p: Principal, kind: PlainScopeKind): void {
  if (isAdmin(p)) return;
  if (!p.scopes.some((s) => s.kind === kind)) throw new SluiceError('FORBIDDEN', `token lacks the ${kind} scope`);
}

/** True if a principal holding `held` may hand out `wanted` (delegation never widens rights). */
export function covers(held: Scope[], wanted: Scope): boolean {
  if (held.some((s) => s.kind === 'admin')) return true;
  if (!('path' in wanted)) return held.some((s) => s.kind === wanted.kind);
  return held.some(
    (s) =>
      'path' in s &&
      (s.kind === wanted.kind || (s.kind === 'storage.modify' && wanted.kind === 'storage.create')) &&
      isWithin(wanted.path, s.path),
  );
}
