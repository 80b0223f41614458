import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPersistence, type PersistenceConfig } from '@cairn/actor-core';

/** Where a torture run writes: a fresh temp directory (the default) or the configured paths. */
export interface TortureTarget {
  /** The configuration the rounds run on (absolute paths). */
  readonly config: PersistenceConfig;
  /** The id prefix of this run: `torture-<random>`, so its ids never mix with another run's or the application's. */
  readonly prefix: string;
  /** "a fresh temp directory <dir>" or "the configured paths <journal> + <snapshots>", for messages. */
  readonly description: string;
  /** Removes what the run wrote: the temp directory, or this run's ids on the configured paths. */
  cleanup(ids: number): Promise<string>;
}

/** The configured store holds ids that are not a torture run's; the run was refused and nothing was written. */
export class OtherDataError extends Error {
  override readonly name = 'OtherDataError';
  constructor(
    readonly where: string,
    readonly otherIds: readonly string[],
    readonly count: number,
  ) {
    super(
      `${where} holds ${count} id(s) that are not a torture run's (${otherIds.map((id) => `"${id}"`).join(', ')}` +
        `${count > otherIds.length ? ', ...' : ''}); cairn-torture writes, kills writers and corrupts copies ` +
        'there. Run without --on-configured-paths to test the same backend in a temp directory, or add ' +
        '--allow-other-ids as well to run beside that data. Nothing was written',
    );
  }
}

/** Ids a torture run writes start with this; anything else in a store is someone else's data. */
export const TORTURE_ID_PREFIX = 'torture-';

function describePaths(config: PersistenceConfig): string {
  const where = (s: PersistenceConfig['journal']) => `${s.provider}${s.path ? ` ${s.path}` : ''}`;
  return `${where(config.journal)} + ${where(config.snapshots)}`;
}

/**
 * Chooses where a torture run writes. By default a fresh temp directory with the configuration's
 * providers and options (the configured paths are not touched). With `onConfiguredPaths`, the
 * configured paths themselves, but only when they hold no ids other than torture runs', unless
 * `allowOtherIds` too (then the application's ids are never written, only listed).
 */
export async function chooseTortureTarget(
  config: PersistenceConfig,
  options: { readonly onConfiguredPaths?: boolean; readonly allowOtherIds?: boolean } = {},
): Promise<TortureTarget> {
  const prefix = `${TORTURE_ID_PREFIX}${randomBytes(4).toString('hex')}`;
  if (!options.onConfiguredPaths) {
    const dir = await mkdtemp(path.join(tmpdir(), 'cairn-torture-data-'));
    const sameDir = config.journal.path !== undefined && config.journal.path === config.snapshots.path;
    const scratch: PersistenceConfig = {
      journal: { ...config.journal, path: path.join(dir, 'journal') },
      snapshots: { ...config.snapshots, path: path.join(dir, sameDir ? 'journal' : 'snapshots') },
    };
    return {
      config: scratch,
      prefix,
      description: `a fresh temp directory ${dir} (${config.journal.provider} + ${config.snapshots.provider}; the configured paths are not touched)`,
      cleanup: async () => {
        await rm(dir, { recursive: true, force: true });
        return `removed ${dir}`;
      },
    };
  }
  const where = `the configured paths ${describePaths(config)}`;
  const others: string[] = [];
  let count = 0;
  const persistence = await createPersistence(config);
  try {
    for await (const id of persistence.journal.persistenceIds()) {
      if (id.startsWith(TORTURE_ID_PREFIX)) continue;
      count++;
      if (others.length < 5) others.push(id);
    }
  } finally {
    await persistence.close();
  }
  if (count > 0 && !options.allowOtherIds) throw new OtherDataError(where, others, count);
  return {
    config,
    prefix,
    description: where,
    cleanup: async (ids) => {
      const opened = await createPersistence(config);
      let events = 0;
      try {
        for (let i = 0; i < ids; i++) {
          const id = `${prefix}-${i}`;
          const highest = await opened.journal.highestSequenceNr(id);
          if (highest > 0) await opened.journal.truncateBefore(id, highest + 1);
          await opened.snapshots.delete(id);
          events += highest;
        }
      } finally {
        await opened.close();
      }
      return (
        `removed the events (${events}) and snapshots of this run's ids ${prefix}-0..${ids - 1}; ` +
        'a journal keeps an emptied id with its highest sequenceNr, since it never hands numbers out again'
      );
    },
  };
}
