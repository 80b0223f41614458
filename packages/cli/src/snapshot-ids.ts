import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { StoreConfig } from '@cairn/actor-core';
import {
  isHashedDirectoryName,
  PERSISTENCE_ID_FILE,
  parseSnapshotFileName,
  persistenceIdFromDirectoryName,
  TEMP_DIRECTORY,
} from '@cairn/snapshot';

/** A persistenceId found in a FileSnapshotStore directory, with its snapshot files. */
export interface SnapshotDirectory {
  readonly persistenceId: string;
  readonly directory: string;
  readonly files: number;
}

/**
 * The persistenceIds that have a directory in a FileSnapshotStore (the SnapshotStore SPI cannot list ids;
 * @cairn/snapshot exports the directory naming, so the file store's ids can be read from its layout).
 * Undefined for any other backend: then only the journal's ids are known. A directory whose name is not
 * a persistenceId is skipped here and left to the store.
 */
export async function listSnapshotDirectories(
  config: StoreConfig | undefined,
): Promise<SnapshotDirectory[] | undefined> {
  if (config?.provider !== 'file' || typeof config.path !== 'string') return undefined;
  const root = config.path;
  const found: SnapshotDirectory[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === TEMP_DIRECTORY) continue;
    const directory = path.join(root, entry.name);
    let persistenceId = persistenceIdFromDirectoryName(entry.name);
    if (persistenceId === undefined && isHashedDirectoryName(entry.name)) {
      persistenceId = await readFile(path.join(directory, PERSISTENCE_ID_FILE), 'utf8').catch(
        () => undefined,
      );
    }
    if (persistenceId === undefined) continue;
    const files = (await readdir(directory)).filter((f) => parseSnapshotFileName(f) !== undefined).length;
    found.push({ persistenceId, directory, files });
  }
  return found;
}
