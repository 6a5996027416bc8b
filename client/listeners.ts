/**
 * Calls an app's listener so that its exception cannot stop the connection or the other listeners; the error is
 * reported as a browser reports an event listener's (reportError), or logged where there is no reportError.
 */
export function callListener(run: () => void): void {
  try {
    run();
  } catch (error) {
    ((globalThis as { reportError?: (error: unknown) => void }).reportError ?? console.error)(error);
  }
}
