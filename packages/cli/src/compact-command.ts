import { canCompact } from '@cairn/actor-core';
import { UsageError } from './exit-codes';
import type { OpenedStores } from './open-stores';
import { type CliOutput, line } from './terminal-output';
import { humanBytes, toJson } from './value-format';

/** Where the space of a journal that cannot compact on demand goes, per built-in provider. */
const ELSEWHERE: Readonly<Record<string, string>> = {
  lmdb: 'LMDB reuses the freed pages but never shrinks data.mdb or overwrites them; write a compacting copy instead (mdb_copy -c, or lmdb-js env.backup(path, true)) and switch to it while the application is stopped',
  postgres:
    'PostgreSQL frees the rows at VACUUM (VACUUM FULL gives the space back to the disk, locking the table meanwhile); its WAL, replicas and backups keep them until they are recycled',
  memory: 'the memory journal drops truncated events at once',
};

/**
 * `cairn compact`: gives the space of truncated and deleted events back to the disk now (a journal with
 * the `compact` capability: the file journal rewrites every segment holding dead records, the one being
 * written included). Opens the journal writable, so the application must be stopped (its lock refuses
 * otherwise).
 */
export async function compactJournal(stores: OpenedStores, json: boolean, out: CliOutput): Promise<void> {
  const journal = stores.journal;
  if (!journal) throw new UsageError('compact needs a journal (--journal or --config)');
  const provider = stores.journalConfig?.provider ?? 'configured';
  if (!canCompact(journal)) {
    throw new UsageError(
      `the ${provider} journal cannot compact on demand: ${ELSEWHERE[provider] ?? 'see its provider for how it frees space'}`,
    );
  }
  const result = await journal.compact();
  if (json) line(out.stdout, toJson(result));
  else {
    const freed = Math.max(0, result.bytesBefore - result.bytesAfter);
    line(
      out.stdout,
      `compacted: ${humanBytes(result.bytesBefore)} -> ${humanBytes(result.bytesAfter)} on disk (${humanBytes(freed)} freed)`,
    );
  }
}
