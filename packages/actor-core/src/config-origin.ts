import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { LoadConfigOptions } from './config';

/** The setting variables `loadPersistenceConfig` reads, in the order it applies them. */
export const CONFIG_VARIABLES = [
  'CAIRN_CONFIG',
  'CAIRN_JOURNAL_PROVIDER',
  'CAIRN_JOURNAL_PATH',
  'CAIRN_SNAPSHOTS_PROVIDER',
  'CAIRN_SNAPSHOTS_PATH',
] as const;

/** Where `loadPersistenceConfig` (with the same options) takes the configuration from. */
export interface ConfigOrigin {
  /** The config file read (absolute), or undefined when there is none. */
  readonly file: string | undefined;
  /** The CAIRN_* setting variables that are set, each with its value. */
  readonly variables: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

/**
 * Says where `loadPersistenceConfig(options)` takes its configuration from: the file (CAIRN_CONFIG or
 * cairn.config.json in the working folder, when it exists) and the CAIRN_* variables that override it.
 * For messages such as "journal file at ... (from ./cairn.config.json, CAIRN_JOURNAL_PATH overrides)".
 */
export async function persistenceConfigOrigin(options: LoadConfigOptions = {}): Promise<ConfigOrigin> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const file = path.resolve(cwd, env.CAIRN_CONFIG ?? 'cairn.config.json');
  const exists = await stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  const variables = CONFIG_VARIABLES.flatMap((name) => {
    const value = env[name];
    return value === undefined ? [] : [{ name, value }];
  });
  return { file: exists ? file : undefined, variables };
}

/** "/app/cairn.config.json, overridden by CAIRN_JOURNAL_PATH=/data/j", or "CAIRN_* variables only". */
export function describeConfigOrigin(origin: ConfigOrigin, relativeTo?: string): string {
  const file =
    origin.file === undefined
      ? undefined
      : relativeTo === undefined
        ? origin.file
        : path.relative(relativeTo, origin.file) || origin.file;
  const overrides = origin.variables
    .filter((v) => v.name !== 'CAIRN_CONFIG')
    .map((v) => `${v.name}=${v.value}`);
  if (file === undefined) {
    return overrides.length > 0 ? `the variables ${overrides.join(', ')} (no config file)` : 'no config file';
  }
  return overrides.length > 0 ? `${file}, overridden by ${overrides.join(', ')}` : file;
}
