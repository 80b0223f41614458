import { randomBytes } from 'node:crypto';
import { link, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { StoreMismatchError } from './errors';

/**
 * The format marker every directory-based backend writes into its directory on first open: which
 * backend's data the directory holds. Switching only the provider of a configuration (an LMDB path
 * opened as a file journal, say) would otherwise create a new, empty store beside the old data, and
 * actors would recover empty without a word. With the marker, an open of another backend's directory
 * is refused with StoreMismatchError naming what it found.
 *
 * The file is small JSON: `{ "cairn": "store", "backend": "file", "version": 1 }`. Backends of one
 * kind share a directory freely (LMDB's journal and snapshot store keep one environment; the file
 * journal and file snapshot store may be given one path): the marker names the backend, not the role.
 */
export const STORE_MARKER_FILE = 'cairn-store.json';

const MARKER_VERSION = 1;

/**
 * What the built-in backends leave in a directory, for directories written before markers existed: a
 * directory without a marker but with these entries holds that backend's data.
 */
const LEGACY_SIGNS: ReadonlyArray<{ readonly backend: string; readonly test: (name: string) => boolean }> = [
  { backend: 'lmdb', test: (name) => name === 'data.mdb' },
  // The file journal's segments and index files; FileSnapshotStore's temp directory.
  { backend: 'file', test: (name) => /^\d{16}\.(log|idx)$/.test(name) || name === '.tmp' },
];

export interface ClaimOptions {
  /** Read-only opens check, but never write the marker. */
  readonly readOnly?: boolean;
}

/**
 * Checks that `directory` (which must exist) holds `backend`'s data or nothing Cairn knows, and writes
 * the marker when it is missing (not when readOnly). Rejects with StoreMismatchError when the marker, or
 * unmarked data of a built-in backend, says the directory belongs to another backend; nothing is written
 * then.
 */
export async function claimStoreDirectory(
  directory: string,
  backend: string,
  options: ClaimOptions = {},
): Promise<void> {
  const markerFile = path.join(directory, STORE_MARKER_FILE);
  let raw: string | undefined;
  try {
    raw = await readFile(markerFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (raw !== undefined) {
    const found = markerBackend(raw);
    if (found === backend) return;
    throw new StoreMismatchError(
      directory,
      backend,
      found === undefined
        ? `an unreadable ${STORE_MARKER_FILE}`
        : `a "${found}" store (${STORE_MARKER_FILE})`,
    );
  }
  const entries = await readdir(directory);
  for (const sign of LEGACY_SIGNS) {
    if (sign.backend === backend) continue;
    const evidence = entries.find(sign.test);
    if (evidence !== undefined) {
      throw new StoreMismatchError(directory, backend, `"${sign.backend}" data (${evidence})`);
    }
  }
  if (options.readOnly) return;
  const marker = `${JSON.stringify({ cairn: 'store', backend, version: MARKER_VERSION })}\n`;
  // Written whole under a temp name, then linked into place: link() fails when the marker exists, so two
  // opens racing on a fresh directory cannot both decide (the loser reads the winner's marker), and no
  // open ever reads a marker half written (a plain exclusive create is visible empty until its write).
  const temp = path.join(
    directory,
    `.${STORE_MARKER_FILE}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`,
  );
  await writeFile(temp, marker);
  try {
    await link(temp, markerFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return claimStoreDirectory(directory, backend, options);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** The backend a marker names, or undefined when it is not a marker this build can read. */
function markerBackend(raw: string): string | undefined {
  try {
    const parsed = JSON.parse(raw) as { cairn?: unknown; backend?: unknown };
    return parsed.cairn === 'store' && typeof parsed.backend === 'string' ? parsed.backend : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The backend whose data `directory` holds, by its marker, or (for data written before markers) by the
 * files a built-in backend leaves; undefined for a directory that holds neither (or does not exist).
 * Reads only.
 */
export async function storeBackendOf(directory: string): Promise<string | undefined> {
  let raw: string | undefined;
  try {
    raw = await readFile(path.join(directory, STORE_MARKER_FILE), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return undefined;
  }
  if (raw !== undefined) return markerBackend(raw);
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return undefined;
  }
  return LEGACY_SIGNS.find((sign) => names.some(sign.test))?.backend;
}
