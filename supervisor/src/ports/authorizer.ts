/** What an admin call asks to do, as polkit actions `org.tabula.supervisor1.<action>`. */
export type AdminAction = 'manage' | 'wipe' | 'factory-reset';

/** Decides whether a D-Bus caller (its unique bus name, ":1.42") may do an admin action. */
export interface Authorizer {
  /** Resolves when allowed; throws access-denied with a message for people otherwise. */
  authorize(caller: string, action: AdminAction): Promise<void>;
}
