/**
 * The exit codes of `cairn`, stable for scripts:
 * - 0: done, and (for verify) nothing wrong was found;
 * - 1: problems were found (verify), or the command could not finish (corrupt or locked data, a copy
 *   that did not verify);
 * - 2: usage error: unknown command or flag, bad value, missing or unrecognised path, bad config, or an
 *   id given that the stores do not hold (verify, events, snapshots);
 * - 3: refused: the backend offers no way to do what was asked (repair on a backend without the API).
 */
export const EXIT_OK = 0;
export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;
/** An id given on the command line is not in the stores: the caller's mistake, so the usage code. */
export const EXIT_NOT_FOUND = EXIT_USAGE;
export const EXIT_UNSUPPORTED = 3;

/** A mistake in how `cairn` was called: reported on stderr with exit code 2, before anything is opened. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The backend cannot do what was asked; reported with exit code 3, nothing was changed. */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
}
