import { LmdbMessageJournal } from '@cairn/journal-lmdb';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

/**
 * readFrom streams: memory does not grow with the log. The fast tier reads 100,000 entries of 1 KB
 * (100 MB of messages, which could not be held within the bound); set CAIRN_LMDB_READ_ENTRIES=1000000
 * to run the full million.
 */
const ENTRIES = Number(process.env.CAIRN_LMDB_READ_ENTRIES ?? 100_000);
const BOUND = 48 * 1024 * 1024;

describe('a large read', () => {
  it(`reads ${ENTRIES} entries in order in bounded memory`, async () => {
    const journal = await LmdbMessageJournal.open<string>({ path: tempDir(), noSync: true });
    const message = 'm'.repeat(1000);
    const batch = Array.from({ length: 1000 }, () => message);
    for (let i = 0; i < ENTRIES / 1000; i++) await journal.appendBatch('big', batch);

    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = used();
    let peak = 0;
    let expected = 1;
    for await (const entry of journal.readFrom('big', 1)) {
      if (entry.sequenceNr !== expected++ || entry.message.length !== 1000)
        throw new Error(`bad entry ${entry.sequenceNr}`);
      if (entry.sequenceNr % 1000 === 0) peak = Math.max(peak, used() - baseline);
    }
    expect(expected - 1).toBe(ENTRIES);
    expect(peak).toBeLessThan(BOUND);
    await journal.close();
  }, 120_000);
});
