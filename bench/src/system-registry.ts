import type { BenchSystem, SystemId } from './system';
import { cairnFileSystem, cairnLmdbSystem, cairnMemorySystem } from './systems/cairn';
import { classicLevelSystem } from './systems/classic-level';
import { eventStorageSystem } from './systems/event-storage';
import { cairnPostgresSystem, pgBatchedSystem, pgNaiveSystem } from './systems/postgres';
import { rawFsSystem } from './systems/raw-fs';
import { rawLmdbIndexedSystem, rawLmdbSystem } from './systems/raw-lmdb';
import { sqliteFullSystem, sqliteNormalSystem } from './systems/sqlite';

/** Every system by id. Loading this module loads no native peer: each one is loaded when first opened. */
export const SYSTEMS: Readonly<Record<SystemId, BenchSystem>> = {
  'cairn-memory': cairnMemorySystem,
  'cairn-file': cairnFileSystem,
  'cairn-lmdb': cairnLmdbSystem,
  'raw-fs': rawFsSystem,
  'raw-lmdb': rawLmdbSystem,
  'raw-lmdb-indexed': rawLmdbIndexedSystem,
  'sqlite-full': sqliteFullSystem,
  'sqlite-normal': sqliteNormalSystem,
  'event-storage': eventStorageSystem,
  'classic-level': classicLevelSystem,
  'cairn-postgres': cairnPostgresSystem,
  'pg-naive': pgNaiveSystem,
  'pg-batched': pgBatchedSystem,
};

/** The raw peer each Cairn provider is held against (the workload table: "the ceiling for the ... backend"). */
export const RAW_PEER: Partial<Readonly<Record<SystemId, SystemId>>> = {
  'cairn-file': 'raw-fs',
  'cairn-lmdb': 'raw-lmdb',
  // The targets for postgres are set against the naive pool (W1 >= 5x, W4 >= 1x); pg-batched runs beside.
  'cairn-postgres': 'pg-naive',
};

/**
 * The raw peer that keeps the same indexes as the Cairn provider (a global position per event, tag
 * entries): the write workloads are also judged against it, as the read side makes every append do more.
 */
export const INDEXED_PEER: Partial<Readonly<Record<SystemId, SystemId>>> = {
  'cairn-lmdb': 'raw-lmdb-indexed',
};
