// The one place where error codes become HTTP: status codes and RFC 7807 problem bodies.
// Bodies also carry dCache's {"errors":[{"message","status"}]} so existing dCache clients read them.
import { STATUS_CODES } from 'node:http';
import type { ErrorCode } from '../errors.js';
import { SluiceError } from '../errors.js';

export const STATUS_OF: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  BAD_PATH: 400,
  RESERVED_PATH: 403,
  BAD_SELECTOR: 400,
  BAD_XML: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  EXISTS: 405,
  CONFLICT: 409,
  NOT_A_DIRECTORY: 409,
  IS_A_DIRECTORY: 409,
  NOT_EMPTY: 409,
  PRECONDITION_FAILED: 412,
  CHECKSUM_MISMATCH: 400,
  RANGE_NOT_SATISFIABLE: 416,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_REQUESTS: 429,
  UNSUPPORTED: 415,
  INSUFFICIENT_STORAGE: 507,
  /** A WebDAV COPY/MOVE Destination on another server (RFC 4918 §9.8.5). */
  REMOTE_DESTINATION: 502,
  /** A blocking invocation whose activation failed; the body carries the activation. */
  FUNCTION_FAILED: 502,
  /** Shutting down, or a component is over capacity as a whole. */
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors: { message: string; status: string }[];
  [extra: string]: unknown;
}

export function problemOf(err: SluiceError, instance?: string): Problem {
  const status = STATUS_OF[err.code];
  const title = STATUS_CODES[status] ?? 'Error';
  return {
    type: `https://sluice.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title,
    status,
    detail: err.message,
    code: err.code,
    ...(instance !== undefined ? { instance } : {}),
    ...(err.details ?? {}),
    errors: [{ message: status === 400 ? err.message : title, status: String(status) }],
  };
}

/** Normalizes anything thrown (Fastify validation errors, body-parser errors, bugs) to a SluiceError. */
export function toSluiceError(e: unknown): SluiceError {
  if (e instanceof SluiceError) return e;
  const err = e as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  if (err && typeof err === 'object') {
    if (err.validation) return new SluiceError('BAD_REQUEST', err.message ?? 'invalid request');
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new SluiceError('UNSUPPORTED', err.message ?? 'unsupported media type');
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new SluiceError('PAYLOAD_TOO_LARGE', 'request body too large');
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      const byStatus = (Object.entries(STATUS_OF) as [ErrorCode, number][]).find(([, s]) => s === err.statusCode);
      return new SluiceError(byStatus ? byStatus[0] : 'BAD_REQUEST', err.message ?? 'bad request');
    }
  }
  return new SluiceError('INTERNAL', 'internal error');
}
