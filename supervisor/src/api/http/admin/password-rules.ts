import { TabulaError } from '../../../domain/errors.js';

export const MIN_PASSWORD_LENGTH = 10;
/** Far more than anyone types; it bounds the work a request can ask of the hash. */
export const MAX_PASSWORD_LENGTH = 1024;

/** Refuses a new password that is too short, too long, or not typed the same twice. */
export function checkNewPassword(password: string, repeated: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH) throw new TabulaError('invalid-argument', `the password is too short: at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) throw new TabulaError('invalid-argument', `the password is too long: at most ${MAX_PASSWORD_LENGTH} characters`);
  if (password.trim() === '') throw new TabulaError('invalid-argument', 'the password is only spaces');
  if (password !== repeated) throw new TabulaError('invalid-argument', 'the two passwords differ: type the same password twice');
}
