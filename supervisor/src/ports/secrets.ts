/** A fresh unguessable token, e.g. for a Spice password. */
export type NewSecret = () => string;
