import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  createPersistence,
  DiskLimitError,
  hasJournalMetrics,
  isPersistenceError,
  MemoryMessageJournal,
} from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { LmdbMessageJournal } from '@cairn/journal-lmdb';

/**
 * maxDiskBytes on the disk backends: at the cap appends reject with DiskLimitError and store nothing,
 * everything else keeps working (reads, truncation), and what truncation frees lifts the cap.
 */
const payload = { blob: 'x'.repeat(2000) };

type Opened = {
  journal: FileMessageJournal<typeof payload> | LmdbMessageJournal<typeof payload>;
  /** Makes what truncation freed count (file: compaction deletes emptied segments; LMDB: at once). */
  reclaim: () => Promise<void>;
};

const backends: Array<[string, (dir: string, maxDiskBytes?: number) => Promise<Opened>]> = [
  [
    'file',
    async (dir, maxDiskBytes) => {
      const journal = await FileMessageJournal.open<typeof payload>({
        path: dir,
        segmentSize: 64 * 1024,
        ...(maxDiskBytes === undefined ? {} : { maxDiskBytes }),
      });
      return { journal, reclaim: async () => void (await journal.compact()) };
    },
  ],
  [
    'lmdb',
    async (dir, maxDiskBytes) => {
      const journal = await LmdbMessageJournal.open<typeof payload>({
        path: dir,
        ...(maxDiskBytes === undefined ? {} : { maxDiskBytes }),
      });
      return { journal, reclaim: async () => undefined };
    },
  ],
];

describe.each(backends)('maxDiskBytes on %s', (_name, open) => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cairn-disk-limit-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('appends stop at the cap with DiskLimitError, nothing else is harmed, truncation lifts it', async () => {
    // Measure the empty store, then cap it about 200 kB above that.
    const probe = await open(dir);
    const empty = probe.journal.metrics().diskBytesUsed!;
    expect(empty).toBeGreaterThanOrEqual(0);
    await probe.journal.close();
    const cap = empty + 200 * 1024;
    const { journal, reclaim } = await open(dir, cap);
    try {
      expect(journal.metrics().maxDiskBytes).toBe(cap);
      let refused: unknown;
      let stored = 0;
      for (let i = 0; i < 1000 && refused === undefined; i++) {
        try {
          await journal.append(`id-${i % 4}`, payload);
          stored++;
        } catch (e) {
          refused = e;
        }
      }
      expect(refused).toBeInstanceOf(DiskLimitError);
      expect(isPersistenceError(refused, 'ERR_DISK_LIMIT')).toBe(true);
      const error = refused as DiskLimitError;
      expect(error.maxDiskBytes).toBe(cap);
      expect(error.message).toMatch(/maxDiskBytes/);
      // About 200 kB of 2 kB events went in; the use stays under the cap.
      expect(stored).toBeGreaterThan(40);
      expect(journal.metrics().diskBytesUsed!).toBeLessThanOrEqual(cap);

      // Nothing of the refused append was stored or numbered; a batch to another id is refused too; reads work.
      const highest = await Promise.all([0, 1, 2, 3].map((k) => journal.highestSequenceNr(`id-${k}`)));
      expect(highest.reduce((a, b) => a + b, 0)).toBe(stored);
      await expect(journal.appendBatch('other', [payload, payload])).rejects.toBeInstanceOf(DiskLimitError);
      expect(await journal.highestSequenceNr('other')).toBe(0);
      let read = 0;
      for await (const e of journal.readFrom('id-0', 1)) {
        expect(e.message).toEqual(payload);
        read++;
      }
      expect(read).toBe(highest[0]);

      // Truncation works at the cap, and what it frees lifts the cap.
      for (let k = 0; k < 4; k++) await journal.truncateBefore(`id-${k}`, highest[k]! + 1);
      await reclaim();
      expect(journal.metrics().diskBytesUsed!).toBeLessThan(cap - 50 * 1024);
      expect(await journal.append('id-0', payload)).toBe(highest[0]! + 1);
    } finally {
      await journal.close();
    }
    // After reopening, the cap applies to what is there, and the data is intact.
    const reopened = await open(dir, cap);
    try {
      expect(await reopened.journal.highestSequenceNr('id-0')).toBeGreaterThan(0);
      await reopened.journal.append('id-1', payload);
    } finally {
      await reopened.journal.close();
    }
  });
});

test('the config path takes maxDiskBytes for file and lmdb; a journal that does not measure its disk use refuses it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-disk-limit-'));
  try {
    for (const provider of ['file', 'lmdb']) {
      const p = await createPersistence({
        journal: { provider, path: path.join(dir, provider), maxDiskBytes: 10_000_000 },
        snapshots: { provider: 'memory' },
      });
      try {
        expect(hasJournalMetrics(p.journal)).toBe(true);
        if (hasJournalMetrics(p.journal)) expect(p.journal.metrics().maxDiskBytes).toBe(10_000_000);
      } finally {
        await p.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await expect(MemoryMessageJournal.open({ maxDiskBytes: 1000 })).rejects.toThrow(/maxDiskBytes/);
  await expect(
    createPersistence({
      journal: { provider: 'memory', maxDiskBytes: 1000 },
      snapshots: { provider: 'memory' },
    }),
  ).rejects.toThrow(/maxDiskBytes/);
});
