import { stat } from 'node:fs/promises';
import { ConfigError } from './errors';

/**
 * Checks that `path` (a store's directory) is a directory or does not exist yet, before a backend creates
 * or opens anything there. Something else at the path (a file, say) is a ConfigError saying it "is not a
 * directory", instead of the EEXIST or ENOTDIR a mkdir or open would throw.
 */
export async function checkDirectoryPath(path: string, what: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') isDirectory = false;
    else throw e;
  }
  if (!isDirectory) {
    throw new ConfigError([
      `path: ${path} is not a directory; the ${what} keeps its data in a directory of its own`,
    ]);
  }
}
