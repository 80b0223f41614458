import { readFileSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { isPersistenceError, type PersistenceReport } from '@cairn/actor-core';
import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';
import { entryKey, idPrefix } from '../src/record-codec';
import { useTempDirs } from './temp-dir';

/*
 * Damage inside LMDB's own page structure (LMDB keeps no page checksums), made by editing data.mdb
 * directly. Page layout of the LMDB inside lmdb-js 3.x: u64 pgno, u64 txnid, u16 pad, u16 flags
 * (1 branch, 2 leaf, 8 meta), u16 lower, u16 upper; pages of 4 KiB.
 */
const PAGE = 4096;
const FLAGS_OFFSET = 18;
const LEAF = 2;

const tempDir = useTempDirs();

/** Every 4 KiB page of data.mdb holding `needle`, the newest (highest txnid) first. */
function pagesHolding(file: string, needle: Buffer): number[] {
  const bytes = readFileSync(file);
  const found: Array<{ page: number; txn: bigint }> = [];
  for (let page = 2; (page + 1) * PAGE <= bytes.length; page++) {
    const start = page * PAGE;
    if (bytes.subarray(start, start + PAGE).includes(needle)) {
      found.push({ page, txn: bytes.readBigUInt64LE(start + 8) });
    }
  }
  return found.sort((a, b) => (a.txn < b.txn ? 1 : a.txn > b.txn ? -1 : 0)).map((f) => f.page);
}

/** Clears the page-type flags of the newest leaf holding `needle`: LMDB reports MDB_CORRUPTED on it. */
function breakNewestLeaf(directory: string, needle: Buffer): void {
  const file = nodePath.join(directory, 'data.mdb');
  const bytes = readFileSync(file);
  const leaf = pagesHolding(file, needle).find((p) => bytes.readUInt16LE(p * PAGE + FLAGS_OFFSET) === LEAF);
  if (leaf === undefined) throw new Error(`no leaf page of ${file} holds the needle: nothing to damage`);
  bytes.writeUInt16LE(0, leaf * PAGE + FLAGS_OFFSET);
  writeFileSync(file, bytes);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('resolved, expected a rejection'),
    (e: unknown) => e,
  );
}

describe('damage to LMDB page structure is typed corruption naming the environment and key', () => {
  it('journal reads and appends on a broken leaf reject with JournalCorruptedError, not StorageError', async () => {
    const path = tempDir();
    const journal = await LmdbMessageJournal.open<{ n: number; pad: string }>({ path });
    for (let n = 1; n <= 40; n++) await journal.append('acct-1', { n, pad: 'DAMAGE-ME'.repeat(10) });
    await journal.close();

    breakNewestLeaf(path, Buffer.from('DAMAGE-ME'));

    const reopened = await LmdbMessageJournal.open({ path });
    try {
      const read = await (async () => {
        try {
          for await (const _ of reopened.readFrom('acct-1', 1)) {
            // draining
          }
          return new Error('the read ended without an error');
        } catch (e) {
          return e;
        }
      })();
      expect(isPersistenceError(read, 'ERR_JOURNAL_CORRUPTED')).toBe(true);
      expect(read).toMatchObject({ persistenceId: 'acct-1' });
      expect((read as Error).message).toContain(`in the LMDB environment ${path}`);
      expect((read as Error).message).toContain('journal:acct-1#');
      expect((read as Error).message).toMatch(/MDB_(CORRUPTED|BAD_TXN|PAGE_NOTFOUND)/);

      const highest = await rejection(reopened.highestSequenceNr('acct-1'));
      expect(isPersistenceError(highest, 'ERR_JOURNAL_CORRUPTED')).toBe(true);
      const append = await rejection(reopened.append('acct-1', { n: 41, pad: '' }));
      expect(isPersistenceError(append, 'ERR_JOURNAL_CORRUPTED')).toBe(true);
    } finally {
      await reopened.close();
    }
  });

  it('a snapshot listing on a broken leaf rejects with SnapshotCorruptedError naming the id', async () => {
    const path = tempDir();
    const store = await LmdbSnapshotStore.open<string>({ path });
    // Small states: every snapshot in one leaf, which the lookup of the listing's start lands on. (A broken
    // leaf that a cursor steps into from a neighbour trips an assertion inside LMDB that aborts the
    // process: native, beyond what JavaScript can catch; see the README.)
    for (let seq = 10; seq <= 100; seq += 10) await store.save('acct-1', seq, `SNAP-STATE-${seq}`);
    await store.close();

    breakNewestLeaf(path, Buffer.from('SNAP-STATE-'));

    const reopened = await LmdbSnapshotStore.open<string>({ path, reporter: () => undefined });
    try {
      const error = await rejection(reopened.loadLatest('acct-1'));
      expect(isPersistenceError(error, 'ERR_SNAPSHOT_CORRUPTED')).toBe(true);
      expect((error as Error).message).toContain(`snapshots:acct-1#`);
      expect((error as Error).message).toContain(`in the LMDB environment ${path}`);
    } finally {
      await reopened.close();
    }
  });

  it('a snapshot key that lists but cannot be looked up is skipped as corrupt, falling back to an older one', async () => {
    const path = tempDir();
    const store = await LmdbSnapshotStore.open<string>({ path });
    for (const seq of [10, 20, 30]) await store.save('acct-1', seq, `state ${seq}`);
    await store.close();

    // Rewrite the stored key of snapshot 10 to say 25 in every copy of the page: the leaf then holds
    // [25, 20, 30], out of order, so a listing yields 25 while a lookup of 25 cannot find it.
    const file = nodePath.join(path, 'data.mdb');
    const bytes = readFileSync(file);
    const from = entryKey(idPrefix('acct-1'), 10);
    const to = entryKey(idPrefix('acct-1'), 25);
    let edits = 0;
    for (let at = bytes.indexOf(from); at >= 0; at = bytes.indexOf(from, at + 1)) {
      to.copy(bytes, at);
      edits++;
    }
    expect(edits).toBeGreaterThan(0);
    writeFileSync(file, bytes);

    const reports: PersistenceReport[] = [];
    const reopened = await LmdbSnapshotStore.open<string>({ path, reporter: (r) => reports.push(r) });
    try {
      const loaded = await reopened.loadLatest('acct-1', { maxSequenceNr: 28 });
      expect(loaded).toMatchObject({ sequenceNr: 20, state: 'state 20' });
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ kind: 'snapshot-skipped', persistenceId: 'acct-1' });
      expect(reports[0]!.message).toContain(`snapshots:acct-1#25 in the LMDB environment ${path}`);
      expect(reports[0]!.message).toContain('listed but its value cannot be read');
    } finally {
      await reopened.close();
    }
  });
});
