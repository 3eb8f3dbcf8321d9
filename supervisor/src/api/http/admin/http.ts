import { TabulaError, type ErrorCode } from '../../../domain/errors.js';
import type { AdminRequest, AdminResponse, EventSink } from '../../../ports/admin-http.js';

export type { AdminRequest, AdminResponse, EventSink };

export const JSON_TYPE = 'application/json; charset=utf-8';

export function json(status: number, value: unknown, headers?: Readonly<Record<string, string>>): AdminResponse {
  return { kind: 'body', status, type: JSON_TYPE, body: JSON.stringify(value) + '\n', ...(headers ? { headers } : {}) };
}

/** HTTP statuses for the error codes a request can meet; anything else is the server's fault (500). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  'invalid-argument': 400,
  'access-denied': 403,
  'not-found': 404,
  conflict: 409,
  'pool-drained': 409,
  'session-under-way': 409,
  // The request was fine; the config file it asked to load is not.
  'config-invalid': 422,
  'config-unreadable': 422,
  // Likewise the image it sent or named.
  'golden-image-invalid': 422,
  'golden-image-missing': 422,
  'disk-full': 507,
  'libvirt-unavailable': 503,
  'bus-unavailable': 503,
  timeout: 504,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

/** `{ "error": { "code", "message" } }`: the code to branch on, the message for people. */
export function failure(err: TabulaError, status = statusOf(err.code), headers?: Readonly<Record<string, string>>): AdminResponse {
  return json(status, { error: { code: err.code, message: err.message } }, headers);
}

export function refusal(code: ErrorCode, message: string, status?: number): AdminResponse {
  return failure(new TabulaError(code, message), status);
}
