// A quick W1-like measurement (not the project benchmark, which lives in bench/ at the root):
// IDS persistence ids, each appending EVENTS events one at a time (awaiting each), all concurrently,
// durable (fdatasync), against the same workload on a raw single-file group-committed log in the same run.
// Usage: npm run build && node packages/journal-file/scripts/quick-w1.js [ids=100] [events=200]
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pack } = require('msgpackr');
const { crc32 } = require('@cairn/actor-core');
const { FileMessageJournal } = require('@cairn/journal-file');
const { encodeFrame } = require('../dist/record-codec');

const IDS = Number(process.argv[2] ?? 100);
const EVENTS = Number(process.argv[3] ?? 200);
const note = 'n'.repeat(100);
const event = (id, i) => ({ type: 'Deposited', amount: i, account: `acct-${id}`, note });

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function run(label, append) {
  const latencies = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IDS }, async (_, id) => {
      for (let i = 0; i < EVENTS; i++) {
        const t = performance.now();
        await append(`acct-${id}`, event(id, i));
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const rate = (IDS * EVENTS) / seconds;
  console.log(
    `${label.padEnd(28)} ${Math.round(rate).toString().padStart(7)} events/s  p50 ${percentile(latencies, 0.5).toFixed(2)} ms  p99 ${percentile(latencies, 0.99).toFixed(2)} ms`,
  );
  return rate;
}

/** raw-fs peer: one file, [u32 length][u32 crc32][payload], appends arriving during an fdatasync share the next. */
async function rawFs(dir) {
  const handle = await fs.promises.open(path.join(dir, 'raw.log'), 'a');
  let queue = [];
  let syncing = false;
  const flush = async () => {
    syncing = true;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      await handle.write(Buffer.concat(batch.map((b) => b.bytes)));
      await handle.datasync();
      for (const b of batch) b.resolve();
    }
    syncing = false;
  };
  const append = (_id, message) =>
    new Promise((resolve) => {
      const payload = pack(message);
      const bytes = Buffer.allocUnsafe(8 + payload.length);
      bytes.writeUInt32LE(payload.length, 0);
      bytes.writeUInt32LE(crc32(payload), 4);
      payload.copy(bytes, 8);
      queue.push({ bytes, resolve });
      if (!syncing) flush();
    });
  const rate = await run('raw-fs (group commit)', append);
  await handle.close();
  return rate;
}

function encodeCost() {
  const events = Array.from({ length: 100 }, (_, i) => ({
    sequenceNr: i + 1,
    timestamp: Date.now(),
    serializerId: 1,
    payload: pack(event(1, i)),
  }));
  const parts = events.map((e, i) => ({ persistenceId: `acct-${i}`, events: [e] }));
  for (let i = 0; i < 200; i++) encodeFrame(parts);
  const rounds = 2000;
  const t = performance.now();
  for (let i = 0; i < rounds; i++) encodeFrame(parts);
  const perFrame = (performance.now() - t) / rounds;
  console.log(
    `encodeFrame (records + CRC32) on the main thread: ${(perFrame * 1000).toFixed(0)} µs per 100-record commit`,
  );
}

(async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-quick-w1-'));
  try {
    console.log(
      `W1-like: ${IDS} ids x ${EVENTS} awaited appends, concurrent, durable; ${os.availableParallelism()} cores`,
    );
    const raw = await rawFs(base);
    const journal = await FileMessageJournal.open({ path: path.join(base, 'journal') });
    const file = await run('FileMessageJournal', (id, m) => journal.append(id, m));
    await journal.close();
    console.log(`ratio FileMessageJournal / raw-fs: ${(file / raw).toFixed(2)}`);
    encodeCost();
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
})();
