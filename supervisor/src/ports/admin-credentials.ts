/** Turns the admin password into something safe to keep, and checks a password against it. */
export interface PasswordHasher {
  /** A self-describing record (scheme, parameters, salt, hash): never the password. */
  hash(password: string): Promise<string>;
  /** Whether `password` is the one `stored` was made from; false for a record it cannot read. */
  verify(password: string, stored: string): Promise<boolean>;
}

/** Where the admin password's record is kept (readable by root only). */
export interface CredentialStore {
  /** The record, or undefined while no password was ever set. */
  load(): Promise<string | undefined>;
  /** Replaces it atomically. */
  save(record: string): Promise<void>;
}
