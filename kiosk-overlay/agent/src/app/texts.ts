/** What the visitor reads. One place, so a site can later translate it. */
export const SCREEN_TEXT = {
  preparing: 'Preparing your desktop…',
  starting: 'Starting your desktop…',
  menuTitle: 'Choose your system',
  unavailable: 'Service unavailable',
  refused: 'This kiosk cannot start a desktop right now',
  tryLater: 'Please try again in a moment, or ask the staff.',
  retrying: (s: number) => `Trying again in ${s} s…`,
  ended: 'Your session has ended',
  viewerTitle: 'Tabula',
  countdown: (reason: string) =>
    reason === 'idle' ? 'No activity: your session ends in' : reason === 'time-limit' ? 'Time is up: your session ends in' : 'Your session ends in',
} as const;

/** Why the session ended, for the visitor. */
export function describeEnd(reason: string): string {
  switch (reason) {
    case 'idle':
      return 'It was idle for too long.';
    case 'time-limit':
      return 'The time limit was reached.';
    case 'link-lost':
      return 'The connection to the server was lost.';
    case 'shutdown':
      return 'The system was shut down.';
    default:
      return 'Everything you did has been erased.';
  }
}
