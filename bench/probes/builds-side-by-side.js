// Two builds of Cairn measured side by side (not part of npm test or the bench run): the W1 shape on the
// memory journal (the core's own cost), the W1 and W2 shapes on the file and LMDB journals, and W4's shape (recovering ids through the runtime) on LMDB, each run five
// times per build, alternating, so a busy spell of the shared machine hits both alike. Prints each run and
// the medians. The other build needs its own @cairn/* links, or it would load this checkout's packages:
//   git worktree add /tmp/before <commit> && cd /tmp/before && mkdir node_modules &&
//   for e in /path/to/this/node_modules/*; do [ "$(basename $e)" = @cairn ] || ln -s $e node_modules/; done &&
//   mkdir node_modules/@cairn && for p in packages/*; do ln -s $PWD/$p node_modules/@cairn/$(basename $p); done &&
//   npx tsc -b packages/actor-core packages/snapshot packages/journal-file packages/journal-lmdb
//   node bench/probes/builds-side-by-side.js /tmp/before/packages
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const RUNS = 5;
const note = 'x'.repeat(100);
const deposit = (amount, account) => ({ type: 'Deposited', amount, account, note });

async function concurrently(count, width, work) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

/** One measurement in this process: `packages` is the build's packages directory. */
async function measure(packages, shape) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-builds-'));
  try {
    if (shape === 'W4 lmdb') return await recoverMany(packages, dir);
    const [workload, backend] = shape.split(' ');
    const Journal = {
      memory: () => require(path.join(packages, 'actor-core/dist')).MemoryMessageJournal,
      file: () => require(path.join(packages, 'journal-file/dist')).FileMessageJournal,
      lmdb: () => require(path.join(packages, 'journal-lmdb/dist')).LmdbMessageJournal,
    }[backend]();
    const journal = await Journal.open({ path: dir });
    let events = 0;
    const started = performance.now();
    if (workload === 'W2') {
      for (let b = 0; b < 400; b++) {
        await journal.appendBatch(
          'w2',
          Array.from({ length: 100 }, (_, i) => deposit(b * 100 + i, 'acct-0')),
        );
        events += 100;
      }
    } else {
      await concurrently(100, 100, async (id) => {
        for (let i = 0; i < 200; i++) {
          await journal.append(`acct-${id}`, deposit(i, `acct-${id}`));
          events++;
        }
      });
    }
    const rate = (events / (performance.now() - started)) * 1000;
    await journal.close();
    return rate;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** 5,000 ids of 20 events with a snapshot at 10, written unsynced, then recovered through the runtime. */
async function recoverMany(packages, dir) {
  const core = require(path.join(packages, 'actor-core/dist'));
  const { LmdbMessageJournal, LmdbSnapshotStore } = require(path.join(packages, 'journal-lmdb/dist'));
  const ids = 5000;
  const journal = await LmdbMessageJournal.open({ path: dir, noSync: true });
  const snapshots = await LmdbSnapshotStore.open({ path: dir, noSync: true });
  await concurrently(ids, 32, async (n) => {
    await journal.appendBatch(
      `w4-${n}`,
      Array.from({ length: 20 }, (_, i) => deposit(i + 1, `a${n}`)),
    );
    await snapshots.save(`w4-${n}`, 10, { balance: 55, events: 10 });
  });
  await journal.close();
  await snapshots.close();
  const behavior = (id) =>
    core.EventSourcedBehavior.create({
      persistenceId: id,
      emptyState: { balance: 0, events: 0 },
      commandHandler: (state) => core.Effect.reply(state),
      eventHandler: (s, e) => ({ balance: s.balance + e.amount, events: s.events + 1 }),
    });
  const started = performance.now();
  const system = await core.ActorSystem.create({
    persistence: { journal: { provider: 'lmdb', path: dir }, snapshots: { provider: 'lmdb', path: dir } },
  });
  await concurrently(ids, 32, (n) => system.spawn(behavior(`w4-${n}`)));
  const rate = (ids / (performance.now() - started)) * 1000;
  await system.terminate();
  return rate;
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

if (process.argv[2] === '--child') {
  measure(process.argv[3], process.argv[4]).then((rate) => console.log(Math.round(rate)));
} else {
  const before = path.resolve(process.argv[2] ?? '');
  const after = path.resolve(process.argv[3] ?? path.join(__dirname, '..', '..', 'packages'));
  if (!process.argv[2] || !fs.existsSync(path.join(before, 'actor-core', 'dist'))) {
    console.error(
      'usage: node bench/probes/builds-side-by-side.js <built packages dir> [<other packages dir>]',
    );
    process.exit(2);
  }
  for (const shape of ['W1 memory', 'W1 file', 'W2 file', 'W1 lmdb', 'W2 lmdb', 'W4 lmdb']) {
    const runs = { before: [], after: [] };
    for (let k = 0; k < RUNS; k++) {
      for (const [which, packages] of [
        ['before', before],
        ['after', after],
      ]) {
        const out = execFileSync(process.execPath, [__filename, '--child', packages, shape]);
        runs[which].push(Number(out.toString().trim()));
      }
    }
    const unit = shape.startsWith('W4') ? 'ids/s' : 'events/s';
    console.log(
      `${shape}: before ${runs.before.join(' ')} (median ${median(runs.before)}) | after ${runs.after.join(' ')} (median ${median(runs.after)}) ${unit}`,
    );
  }
}
