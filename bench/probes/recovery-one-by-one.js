// W4b's shape on the file journal for one build or two side by side (alternating child processes):
// ids x 20 events written interleaved in batches of 5 (fsync off), closed; timed: open + readFrom every id
// in full one after another, then (fresh open) 32 at a time. Prints ids/s per run and the medians.
//   node bench/probes/recovery-one-by-one.js [--ids 5000] [--runs 3] <packages> [<other packages>]
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { median, takeOption } = require('./probe-args');

const note = 'x'.repeat(100);

async function concurrently(count, width, work) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

async function child(packages, ids) {
  const { FileMessageJournal } = require(path.join(packages, 'journal-file/dist'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-w4b-'));
  try {
    const setup = await FileMessageJournal.open({ path: dir, fsync: false });
    for (let first = 1; first <= 20; first += 5) {
      await concurrently(ids, 32, (n) =>
        setup.appendBatch(
          `w4b-${n}`,
          Array.from({ length: 5 }, (_, k) => ({
            type: 'Deposited',
            amount: first + k,
            account: `acct-${n}`,
            note,
          })),
        ),
      );
    }
    await setup.close();
    const result = {};
    for (const [mode, width] of [
      ['oneByOne', 1],
      ['concurrent32', 32],
    ]) {
      const started = performance.now();
      const journal = await FileMessageJournal.open({ path: dir });
      const sums = new Array(ids).fill(0);
      await concurrently(ids, width, async (n) => {
        for await (const e of journal.readFrom(`w4b-${n}`, 1)) sums[n] += e.message.amount;
      });
      result[mode] = ids / ((performance.now() - started) / 1000);
      await journal.close();
      if (sums.some((s) => s !== 210)) throw new Error('wrong sums');
    }
    process.stdout.write(JSON.stringify(result));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function main() {
  const args = process.argv.slice(2);
  const option = (name, fallback) => takeOption(args, name, fallback);
  const ids = option('--ids', 5000);
  const runs = option('--runs', 3);
  const builds = args.map((a) => path.resolve(a));
  const results = builds.map(() => []);
  for (let run = 0; run < runs; run++) {
    builds.forEach((packages, b) => {
      const r = JSON.parse(
        execFileSync(process.execPath, [__filename, '--child', packages, String(ids)], { encoding: 'utf8' }),
      );
      results[b].push(r);
      console.log(
        `run ${run + 1} ${packages}: ${Math.round(r.oneByOne)} ids/s one by one, ${Math.round(r.concurrent32)} ids/s 32 at a time`,
      );
    });
  }
  builds.forEach((packages, b) => {
    console.log(
      `median of ${runs}, ${ids} ids, ${packages}: ${Math.round(median(results[b].map((r) => r.oneByOne)))} ids/s one by one, ${Math.round(median(results[b].map((r) => r.concurrent32)))} ids/s 32 at a time`,
    );
  });
}

if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else main();
