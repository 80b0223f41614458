// Where a durable commit's time goes, for the gaps BENCHMARKS.md discusses (not part of npm test or the
// bench run). Wraps private members of the built journals, so it measures exactly what the bench runs:
//   npm run build && node bench/probes/commit-split.js file|lmdb [W1|W2] [rounds=300]
// W1: 100 ids, each appending one event at a time (awaited), all concurrently; W2: one id appending
// batches of 100. Prints events/s and, per commit: the time from the first append it holds to the backend's _write, the
// _write itself and, inside it, the IO task (file: the IoPool round trip with write + fdatasync; lmdb:
// until lmdb-js runs the transaction body, the body, and the commit after it).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FileMessageJournal } = require('../../packages/journal-file/dist');
const { LmdbMessageJournal } = require('../../packages/journal-lmdb/dist');

const [kind = 'file', workload = 'W1', roundsArg = '300'] = process.argv.slice(2);
const rounds = Number(roundsArg);
const note = 'x'.repeat(100);
const deposit = (amount, account) => ({ type: 'Deposited', amount, account, note });

function timed(totals, key, promise) {
  const started = performance.now();
  return promise.finally(() => {
    totals[key] = (totals[key] ?? 0) + performance.now() - started;
  });
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-commit-split-'));
  const journal =
    kind === 'lmdb'
      ? await LmdbMessageJournal.open({ path: dir })
      : await FileMessageJournal.open({ path: dir });
  const totals = {};
  let commits = 0;
  let issuedAt = 0;
  const write = journal._write.bind(journal);
  journal._write = (writes) => {
    commits++;
    totals['call -> _write'] = (totals['call -> _write'] ?? 0) + performance.now() - issuedAt;
    issuedAt = 0; // the next commit's clock starts with the first append after this one was taken
    return timed(totals, '_write', write(writes));
  };
  if (kind === 'lmdb') {
    const env = journal.env;
    const run = env.write.bind(env);
    env.write = (body) => {
      const started = performance.now();
      let bodyStart = 0;
      let bodyEnd = 0;
      return run(() => {
        bodyStart = performance.now();
        try {
          return body();
        } finally {
          bodyEnd = performance.now();
        }
      }).finally(() => {
        totals['  until the body runs'] = (totals['  until the body runs'] ?? 0) + bodyStart - started;
        totals['  body'] = (totals['  body'] ?? 0) + bodyEnd - bodyStart;
        totals['  commit after it'] = (totals['  commit after it'] ?? 0) + performance.now() - bodyEnd;
      });
    };
  } else {
    const io = journal.io;
    const run = io.run.bind(io);
    io.run = (...args) => timed(totals, '  IoPool task', run(...args));
  }
  const started = performance.now();
  let events = 0;
  if (workload === 'W2') {
    for (let round = 0; round < rounds; round++) {
      const batch = Array.from({ length: 100 }, (_, i) => deposit(round * 100 + i, 'acct-0'));
      issuedAt = performance.now();
      await journal.appendBatch('w2', batch);
      events += batch.length;
    }
  } else {
    await Promise.all(
      Array.from({ length: 100 }, async (_, id) => {
        for (let i = 0; i < rounds; i++) {
          issuedAt = issuedAt || performance.now();
          await journal.append(`acct-${id}`, deposit(i, `acct-${id}`));
          events++;
        }
      }),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`${kind} ${workload}: ${Math.round(events / seconds)} events/s, ${commits} commits`);
  for (const [key, ms] of Object.entries(totals))
    console.log(`${key.padEnd(24)} ${(ms / commits).toFixed(3)} ms/commit`);
  await journal.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main();
