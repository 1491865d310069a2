// The one error family of sluice: every failure a caller can see carries a stable code.
// Codes map to HTTP status and RFC 7807 bodies in exactly one place (api/problem.ts).

export type ErrorCode =
  | 'BAD_REQUEST'
  | 'BAD_PATH'
  | 'RESERVED_PATH'
  | 'BAD_SELECTOR'
  | 'BAD_XML'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'EXISTS'
  | 'CONFLICT'
  | 'NOT_A_DIRECTORY'
  | 'IS_A_DIRECTORY'
  | 'NOT_EMPTY'
  | 'PRECONDITION_FAILED'
  | 'CHECKSUM_MISMATCH'
  | 'RANGE_NOT_SATISFIABLE'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'UNSUPPORTED'
  | 'INSUFFICIENT_STORAGE'
  | 'REMOTE_DESTINATION'
  | 'FUNCTION_FAILED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'SluiceError';
    this.code = code;
    this.details = details;
  }
}
