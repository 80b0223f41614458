import {
  type CorruptionLocation,
  isPersistenceError,
  JournalCorruptedError,
  SnapshotCorruptedError,
} from '@cairn/actor-core';

/*
 * LMDB keeps no checksums on its own pages, so after a flipped bit its B-tree can answer anything: an
 * error code of its own (MDB_CORRUPTED, MDB_PAGE_NOTFOUND; after the first such error in a transaction,
 * MDB_BAD_TXN for every later call in it), a key that lists but cannot be read, a value of the wrong
 * shape. None of these is a storage failure a retry could fix: they are corruption of the environment,
 * and are reported as such, naming the environment and the key or range that was being read, so
 * recovery can fall back (an older snapshot) or stop with a named cause instead of a bare StorageError.
 */

/** lmdb-js error messages that mean the environment's page structure is damaged (not a full disk, not misuse). */
const STRUCTURE_DAMAGE =
  /\b(MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_BAD_TXN|MDB_CURSOR_FULL|MDB_PAGE_FULL|MDB_INCOMPATIBLE|MDB_INVALID|MDB_BAD_DBI)\b/;

/** True when `e` is an lmdb-js error reporting damaged pages (see STRUCTURE_DAMAGE). */
export function isStructureDamage(e: unknown): boolean {
  if (isPersistenceError(e)) return false;
  const message = (e as { message?: unknown } | null)?.message;
  return typeof message === 'string' && STRUCTURE_DAMAGE.test(message);
}

/** Where a damaged read happened: the database key or key range, and the id and sequenceNr when known. */
export interface DamageSite {
  /** e.g. `journal:account-1#5..20` or `snapshots:account-1#40`. */
  readonly key: string;
  readonly persistenceId?: string;
  readonly sequenceNr?: number;
}

function location(directory: string, site: DamageSite, reason: string): CorruptionLocation {
  return {
    persistenceId: site.persistenceId,
    sequenceNr: site.sequenceNr,
    key: `${site.key} in the LMDB environment ${directory}`,
    reason,
  };
}

function lmdbReason(e: unknown): string {
  return `LMDB page structure damaged (${(e as Error).message.split('\n')[0]})`;
}

/** `e` as a JournalCorruptedError when it reports damaged pages; otherwise `e` unchanged. */
export function asJournalDamage(e: unknown, directory: string, site: DamageSite): unknown {
  if (!isStructureDamage(e)) return e;
  return new JournalCorruptedError(location(directory, site, lmdbReason(e)), { cause: e });
}

/** `e` as a SnapshotCorruptedError when it reports damaged pages; otherwise `e` unchanged. */
export function asSnapshotDamage(e: unknown, directory: string, site: DamageSite): unknown {
  if (!isStructureDamage(e)) return e;
  return new SnapshotCorruptedError(location(directory, site, lmdbReason(e)), { cause: e });
}

/** A snapshot the B-tree lists but whose value it cannot return: damage, named like the others. */
export function unreadableSnapshot(directory: string, site: DamageSite): SnapshotCorruptedError {
  return new SnapshotCorruptedError(
    location(directory, site, 'the key is listed but its value cannot be read (LMDB page structure damaged)'),
  );
}
