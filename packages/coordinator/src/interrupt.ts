/*
 * Ctrl-C handling for training: the first SIGINT asks for a clean stop (finish the step, save a checkpoint),
 * a second one quits at once.
 *
 * Why the window: the terminal sends SIGINT to the whole foreground process group, and package runners
 * (pnpm, npm) also relay the one they received to their child. Under `pnpm train` one Ctrl-C therefore
 * arrives twice, ~30 ms apart, and a naive "second SIGINT quits" handler lost the checkpoint it had just
 * promised. Copies within RELAY_WINDOW_MS of the first count as the same Ctrl-C.
 */

/** SIGINTs closer than this to the first one are the same Ctrl-C, relayed. */
const RELAY_WINDOW_MS = 1000;

/**
 * Calls onStop on the first SIGINT, and process.exit(130) on a later one (more than RELAY_WINDOW_MS after
 * it). Returns the function that removes the handler.
 */
export function onInterrupt(onStop: () => void): () => void {
  let first: number | null = null;
  const handler = (): void => {
    if (first === null) {
      first = Date.now();
      onStop();
    } else if (Date.now() - first > RELAY_WINDOW_MS) {
      process.exit(130); // a second Ctrl-C: quit now
    }
  };
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGINT', handler);
  };
}
