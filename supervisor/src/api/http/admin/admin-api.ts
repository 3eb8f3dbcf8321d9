import type { SupervisorApi } from '../../dbus/service.js';

/**
 * What the admin page may use of the one API: the same calls D-Bus makes
 * (the login replaces D-Bus's authorizer), so the page can do nothing
 * tabulactl cannot.
 */
export type AdminApi = Omit<SupervisorApi, 'authorizer'>;
