// A quick W3-like measurement (the project benchmark lives in bench/ at the root): one id holding EVENTS
// events (written in batches of 100), replayed and decoded from sequenceNr 1; beside it, the same
// payloads in a raw [u32 length][u32 crc32][payload] file read and decoded in the same run, and the
// journal's own page reads (_read) without the base class's per-entry iteration.
// Usage: npm run build && node packages/journal-file/scripts/quick-w3.js [events=300000]
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { unpack } = require('msgpackr');
const { crc32 } = require('@cairn/actor-core');
const { FileMessageJournal } = require('@cairn/journal-file');

const EVENTS = Number(process.argv[2] ?? 300_000);
const note = 'n'.repeat(100);

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-quick-w3-'));
  try {
    const writer = await FileMessageJournal.open({ path: path.join(dir, 'journal'), fsync: false });
    for (let b = 0; b < EVENTS / 100; b++) {
      await writer.appendBatch(
        'one',
        Array.from({ length: 100 }, (_, i) => ({
          type: 'Deposited',
          amount: b * 100 + i,
          account: 'acct-1',
          note,
        })),
      );
    }
    await writer.close();
    const journal = await FileMessageJournal.open({ path: path.join(dir, 'journal') });
    const rawFile = path.join(dir, 'raw.log');
    const out = fs.openSync(rawFile, 'w');
    for await (const page of journal._read('one', 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
      for (const e of page) {
        const header = Buffer.alloc(8);
        header.writeUInt32LE(e.payload.length, 0);
        header.writeUInt32LE(crc32(e.payload), 4);
        fs.writeSync(out, header);
        fs.writeSync(out, e.payload);
      }
    }
    fs.closeSync(out);
    const rate = (n, t) => Math.round(n / ((performance.now() - t) / 1000));
    for (let round = 1; round <= 3; round++) {
      let t = performance.now();
      let n = 0;
      const bytes = fs.readFileSync(rawFile);
      for (let at = 0; at < bytes.length; n++) {
        const length = bytes.readUInt32LE(at);
        const payload = bytes.subarray(at + 8, at + 8 + length);
        if (crc32(payload) !== bytes.readUInt32LE(at + 4)) throw new Error('raw CRC mismatch');
        unpack(payload);
        at += 8 + length;
      }
      const raw = rate(n, t);
      t = performance.now();
      n = 0;
      for await (const page of journal._read('one', 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
        for (const e of page) {
          unpack(e.payload);
          n++;
        }
      }
      const pages = rate(n, t);
      const heapBefore = process.memoryUsage().heapUsed;
      let peak = 0;
      t = performance.now();
      n = 0;
      for await (const _ of journal.readFrom('one', 1)) {
        if ((++n & 8191) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - heapBefore);
      }
      const full = rate(n, t);
      console.log(
        `round ${round}: raw-fs ${raw}/s  journal pages+decode ${pages}/s  readFrom ${full}/s ` +
          `(readFrom / raw ${(full / raw).toFixed(2)}, peak heap growth ${(peak / 1e6).toFixed(1)} MB)`,
      );
    }
    await journal.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();
