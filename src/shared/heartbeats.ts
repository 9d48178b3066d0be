/**
 * How long activities beat, and how long Temporal waits for a beat. Defined once so the
 * two cannot drift apart: a heartbeat timeout of minutes against a beat every few
 * seconds keeps a group out of service for minutes after its worker died.
 */

/** A long activity heartbeats at least this often, silent work or not. */
export const HEARTBEAT_EVERY_MS = 5_000;

/** Without a beat for this long the attempt is given up and retried: about three missed beats. */
export const HEARTBEAT_TIMEOUT = '15s';
