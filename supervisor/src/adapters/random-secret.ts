import { randomBytes } from 'node:crypto';
import type { NewSecret } from '../ports/secrets.js';

/** 144 random bits, URL- and XML-safe. */
export const randomSecret: NewSecret = () => randomBytes(18).toString('base64url');
