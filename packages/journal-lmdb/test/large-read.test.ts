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

describe('reads hand out stable payloads', () => {
  // Ranges yield views into lmdb-js's reused buffers (environment.ts, journalViews): every entry a read
  // served must keep its own bytes after the read moved on, for small values, values past lmdb-js's
  // shared value buffer and memory-mapped large ones.
  it('keeps every entry of several pages intact after the read completed', async () => {
    const journal = await LmdbMessageJournal.open<{ i: number; fill: string }>({
      path: tempDir(),
      noSync: true,
    });
    const sizes = [0, 1, 100, 5000, 70_000, 300_000];
    const messages = Array.from({ length: 2500 }, (_, i) => ({
      i,
      fill: String.fromCharCode(97 + (i % 26)).repeat(sizes[i % sizes.length]!),
    }));
    for (let first = 0; first < messages.length; first += 500) {
      await journal.appendBatch('mixed', messages.slice(first, first + 500));
    }
    const read: Array<{ i: number; fill: string }> = [];
    for await (const entry of journal.readFrom('mixed', 1)) read.push(entry.message);
    expect(read).toEqual(messages);

    // Raw payload views kept across pages by a consumer of _read stay intact too.
    const pages: Array<readonly { payload: Uint8Array }[]> = [];
    const reader = (
      journal as unknown as {
        _read(
          id: string,
          from: number,
          to: number,
          max: number,
        ): AsyncIterable<readonly { payload: Uint8Array }[]>;
      }
    )._read('mixed', 1, 2500, 2500);
    for await (const page of reader) pages.push(page);
    const payloads = pages.flat().map((e) => Buffer.from(e.payload).toString('latin1'));
    expect(new Set(payloads).size).toBe(2500);
    await journal.close();
  }, 60_000);
});
