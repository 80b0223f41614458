// CPU time per operation of several builds of this package side by side, interleaved, in one process: a
// steadier before/after figure than wall-clock rates on a shared machine. Not part of `npm test`.
//   node packages/journal-lmdb/bench/cpu-per-op.bench.js <w1|w5> <dist dir> [<dist dir> ...]
// w1: 100 ids append 200 events each, concurrently (noSync: the commit path's CPU without the disk).
// w5: 1,000 snapshot loads of 10 KB states (after saving them once).
// A dist dir outside the repository needs a node_modules link to the repository's.
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');

const [workload, ...dirs] = process.argv.slice(2);
if (!['w1', 'w5'].includes(workload) || dirs.length === 0) {
  console.error('usage: cpu-per-op.bench.js <w1|w5> <dist dir> [<dist dir> ...]');
  process.exit(2);
}
const builds = dirs.map((dir) => ({ name: dir, pkg: require(path.resolve(dir, 'index.js')), runs: [] }));
const NOTE = 'n'.repeat(100);
const event = (i, n) => ({ type: 'Deposited', amount: i, account: `acct-${n}`, note: NOTE });
const ROUNDS = workload === 'w1' ? 10 : 12;

async function w1({ LmdbMessageJournal }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-lmdb-cpu-'));
  const journal = await LmdbMessageJournal.open({ path: dir, noSync: true });
  const start = process.cpuUsage();
  await Promise.all(
    Array.from({ length: 100 }, async (_, n) => {
      for (let i = 1; i <= 200; i++) await journal.append(`acct-${n}`, event(i, n));
    }),
  );
  const used = process.cpuUsage(start);
  await journal.close();
  rmSync(dir, { recursive: true, force: true });
  return (used.user + used.system) / 20_000;
}

async function main() {
  const stores = new Map();
  if (workload === 'w5') {
    for (const b of builds) {
      const dir = mkdtempSync(path.join(tmpdir(), 'cairn-lmdb-cpu-'));
      const store = await b.pkg.LmdbSnapshotStore.open({ path: dir, noSync: true });
      for (let i = 1; i <= 1000; i++)
        await store.save(`acct-${i}`, 10, { version: i, blob: 's'.repeat(10_000) });
      stores.set(b, { store, dir });
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const b of builds) {
      if (workload === 'w1') {
        b.runs.push(await w1(b.pkg));
        continue;
      }
      const { store } = stores.get(b);
      const start = process.cpuUsage();
      for (let i = 1; i <= 1000; i++) {
        if ((await store.loadLatest(`acct-${i}`)).state.version !== i) throw new Error('W5 load mismatch');
      }
      const used = process.cpuUsage(start);
      b.runs.push((used.user + used.system) / 1000);
    }
  }
  for (const { store, dir } of stores.values()) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const unit = workload === 'w1' ? 'us CPU per append' : 'us CPU per load';
  for (const b of builds) {
    const sorted = b.runs.slice().sort((x, y) => x - y);
    console.log(
      `${b.name}: ${unit}: min ${sorted[0].toFixed(1)}, median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} (${ROUNDS} rounds)`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
