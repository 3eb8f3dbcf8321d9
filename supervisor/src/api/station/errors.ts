/** The line a station is told when its request cannot be served. */
export function stationError(code: string): string {
  switch (code) {
    case 'conflict':
      return 'ERR 429 already-waiting';
    case 'session-under-way':
      return 'ERR 409 wrong-state a session is under way';
    case 'ticket-required':
      return 'ERR 426 ticket-required';
    case 'not-found':
      return 'ERR 404 no-such-pool';
    case 'libvirt-unavailable':
    case 'bus-unavailable':
      // The server is degraded, not broken: the kiosk shows "try again" and retries.
      return 'ERR 503 try-again';
    default:
      return `ERR 503 ${code}`;
  }
}
