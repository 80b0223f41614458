import {
  checkOpenOptions,
  JOURNAL_OPTION_TYPES,
  type OptionSchema,
  type OptionType,
  SNAPSHOT_OPTION_TYPES,
} from '@cairn/actor-core';
import type { LmdbEnvironmentSettings } from './environment';

/**
 * Options only the LMDB backend takes, beside JOURNAL_OPTION_TYPES / SNAPSHOT_OPTION_TYPES. The schemas
 * below are the one declaration open() and the provider's validateOptions both check.
 */
const LMDB_OPTION_TYPES: Readonly<Record<string, OptionType>> = {
  noSync: 'boolean',
  readOnly: 'boolean',
  mapSize: {
    check: (v) => Number.isSafeInteger(v) && (v as number) > 0,
    expected: 'an integer number of bytes > 0',
  },
};

export const LMDB_JOURNAL_OPTION_TYPES: OptionSchema = {
  ...JOURNAL_OPTION_TYPES,
  ...LMDB_OPTION_TYPES,
  maxDiskBytes: {
    check: (v) => Number.isSafeInteger(v) && (v as number) >= 1,
    expected: 'an integer number of bytes >= 1',
  },
};

export const LMDB_SNAPSHOT_OPTION_TYPES: OptionSchema = {
  ...SNAPSHOT_OPTION_TYPES,
  ...LMDB_OPTION_TYPES,
};

/**
 * Checks the options open() needs before anything is touched; the shared ones (batching, serializer)
 * are checked by the base class constructors.
 */
export function checkLmdbOptions(
  owner: 'LmdbMessageJournal' | 'LmdbSnapshotStore',
  options: unknown,
): LmdbEnvironmentSettings {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError('options must be an object with a path');
  }
  const { path, noSync, mapSize, readOnly } = options as Record<string, unknown>;
  if (typeof path !== 'string' || path.length === 0) {
    throw new TypeError('options.path must be a non-empty string (the LMDB environment directory)');
  }
  if (noSync !== undefined && typeof noSync !== 'boolean') {
    throw new TypeError(`options.noSync must be a boolean, got ${typeof noSync}`);
  }
  if (readOnly !== undefined && typeof readOnly !== 'boolean') {
    throw new TypeError(`options.readOnly must be a boolean, got ${typeof readOnly}`);
  }
  if (
    mapSize !== undefined &&
    !(typeof mapSize === 'number' && Number.isSafeInteger(mapSize) && mapSize > 0)
  ) {
    throw new RangeError(`options.mapSize must be an integer number of bytes > 0, got ${String(mapSize)}`);
  }
  checkOpenOptions(
    owner,
    options,
    owner === 'LmdbMessageJournal' ? LMDB_JOURNAL_OPTION_TYPES : LMDB_SNAPSHOT_OPTION_TYPES,
  );
  return { noSync: noSync ?? false, mapSize: mapSize as number | undefined, readOnly: readOnly ?? false };
}
