// W1, W2, W3 and W5 of the workload table in BENCHMARKS.md: LmdbMessageJournal / LmdbSnapshotStore next to raw lmdb-js
// (key [id, seq], msgpack values, durable), in one run, on fresh directories. Runs the built package:
//   npx tsc -b packages/journal-lmdb && node --expose-gc packages/journal-lmdb/bench/lmdb.bench.js [--full] [--reps=3]
//     [--only=W1,W3] [--compare=<dir>]
// Default sizes are scaled down for a shared 2-core machine; --full uses the sizes of the workload table.
// --compare=<dir> also runs another build of this package (a copy of an older dist/, with a node_modules
// link to the repository's, so its imports resolve) as subject "before", interleaved with the others:
// a before/after comparison under the same machine load.
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { open } = require('lmdb');
const current = require('../dist/index.js');
const compareDir = process.argv.find((a) => a.startsWith('--compare='))?.slice(10);
const before = compareDir ? require(path.resolve(compareDir, 'index.js')) : undefined;
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const runs = (workload) => !only || only.includes(workload);

const full = process.argv.includes('--full');
const SIZES = full
  ? { w1Ids: 100, w1Each: 1000, w2Events: 100_000, w3Events: 1_000_000, w5Snapshots: 1000 }
  : { w1Ids: 100, w1Each: 200, w2Events: 50_000, w3Events: 200_000, w5Snapshots: 1000 };

const NOTE = 'n'.repeat(100);
const event = (i, n) => ({ type: 'Deposited', amount: i, account: `acct-${n}`, note: NOTE });
const state10k = (i) => ({ version: i, blob: 's'.repeat(10_000) });

const dirs = [];
function freshDir() {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-lmdb-bench-'));
  dirs.push(dir);
  return dir;
}

/** Raw lmdb-js, durable: a sync commit (overlappingSync off), or overlappingSync with await db.flushed. */
function openRaw(mode) {
  const root = open({ path: freshDir(), overlappingSync: mode === 'flushed' });
  return {
    root,
    db: root.openDB({ name: 'journal' }),
    durable: mode === 'flushed' ? () => root.flushed : () => undefined,
  };
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

async function w1(append) {
  const latencies = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: SIZES.w1Ids }, async (_, n) => {
      const id = `acct-${n}`;
      for (let i = 1; i <= SIZES.w1Each; i++) {
        const t = performance.now();
        await append(id, i, event(i, n));
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate: (SIZES.w1Ids * SIZES.w1Each) / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

async function w2(appendBatch) {
  const start = performance.now();
  for (let first = 1; first <= SIZES.w2Events; first += 100) {
    await appendBatch(
      first,
      Array.from({ length: 100 }, (_, k) => event(first + k, 0)),
    );
  }
  return { rate: SIZES.w2Events / ((performance.now() - start) / 1000) };
}

async function w3(fill, replay) {
  for (let first = 1; first <= SIZES.w3Events; first += 10_000) {
    await fill(
      first,
      Array.from({ length: 10_000 }, (_, k) => event(first + k, 0)),
    );
  }
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  let peak = 0;
  let count = 0;
  let sum = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await replay((message) => {
    sum += message.amount;
    if (++count % 10_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - before);
  });
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  if (count !== SIZES.w3Events || sum !== (SIZES.w3Events * (SIZES.w3Events + 1)) / 2)
    throw new Error('W3 replay incomplete');
  // Replay is CPU-bound: events per CPU-second is the figure the machine's other load disturbs least.
  return { rate: count / seconds, cpuRate: count / cpuSeconds, heapMb: peak / 2 ** 20 };
}

async function w5(save, load) {
  let start = performance.now();
  for (let i = 1; i <= SIZES.w5Snapshots; i++) await save(`acct-${i}`, 10, state10k(i));
  const saves = SIZES.w5Snapshots / ((performance.now() - start) / 1000);
  start = performance.now();
  for (let i = 1; i <= SIZES.w5Snapshots; i++) {
    const s = await load(`acct-${i}`);
    if (s.version !== i) throw new Error('W5 load mismatch');
  }
  const loads = SIZES.w5Snapshots / ((performance.now() - start) / 1000);
  return { saves, loads };
}

// ---- subjects ----

async function cairnW1({ LmdbMessageJournal } = current) {
  const j = await LmdbMessageJournal.open({ path: freshDir() });
  try {
    return await w1((id, _i, e) => j.append(id, e));
  } finally {
    await j.close();
  }
}
async function rawW1(mode) {
  const { root, db, durable } = openRaw(mode);
  try {
    return await w1(async (id, i, e) => {
      await db.put([id, i], e);
      await durable();
    });
  } finally {
    await root.close();
  }
}
async function cairnW2({ LmdbMessageJournal } = current) {
  const j = await LmdbMessageJournal.open({ path: freshDir() });
  try {
    return await w2((_first, events) => j.appendBatch('acct-0', events));
  } finally {
    await j.close();
  }
}
async function rawW2(mode) {
  const { root, db, durable } = openRaw(mode);
  try {
    return await w2(async (first, events) => {
      await db.transaction(() => {
        for (let k = 0; k < events.length; k++) db.put(['acct-0', first + k], events[k]);
      });
      await durable();
    });
  } finally {
    await root.close();
  }
}
async function cairnW3({ LmdbMessageJournal } = current) {
  const j = await LmdbMessageJournal.open({ path: freshDir(), noSync: true });
  try {
    return await w3(
      (_first, events) => j.appendBatch('acct-0', events),
      async (onMessage) => {
        for await (const entry of j.readFrom('acct-0', 1)) onMessage(entry.message);
      },
    );
  } finally {
    await j.close();
  }
}
async function rawW3() {
  const { root, db } = openRaw('sync');
  try {
    return await w3(
      (first, events) =>
        db.transaction(() => {
          for (let k = 0; k < events.length; k++) db.put(['acct-0', first + k], events[k]);
        }),
      async (onMessage) => {
        for (const { value } of db.getRange({
          start: ['acct-0', 1],
          end: ['acct-0', Number.MAX_SAFE_INTEGER],
        })) {
          onMessage(value);
        }
      },
    );
  } finally {
    await root.close();
  }
}
async function cairnW5({ LmdbSnapshotStore } = current) {
  const s = await LmdbSnapshotStore.open({ path: freshDir() });
  try {
    return await w5(
      (id, seq, state) => s.save(id, seq, state),
      async (id) => (await s.loadLatest(id)).state,
    );
  } finally {
    await s.close();
  }
}
async function rawW5(mode) {
  const { root, db, durable } = openRaw(mode);
  try {
    return await w5(
      async (id, seq, state) => {
        await db.put([id, seq], state);
        await durable();
      },
      async (id) => {
        for (const { value } of db.getRange({
          start: [id, 0],
          end: [id, Number.MAX_SAFE_INTEGER],
          reverse: false,
        })) {
          return value;
        }
      },
    );
  } finally {
    await root.close();
  }
}

// ---- report ----

const fmt = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
const REPS = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? 3);

/**
 * Runs each subject REPS times, interleaved (cairn, raw, raw, cairn, ...), and keeps each figure's median:
 * on a shared machine the load changes from second to second, and interleaving spreads it over all subjects.
 */
async function measure(subjects) {
  const results = Object.fromEntries(Object.keys(subjects).map((name) => [name, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const [name, run] of Object.entries(subjects)) results[name].push(await run());
  }
  return Object.fromEntries(
    Object.entries(results).map(([name, runs]) => [
      name,
      Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(runs.map((r) => r[k]))])),
    ]),
  );
}

async function main() {
  console.log(
    `lmdb bench (${full ? 'full' : 'scaled'}, median of ${REPS} interleaved runs): ${JSON.stringify(SIZES)}; node ${process.version}` +
      (before ? `; "before" = ${compareDir}` : ''),
  );
  const rows = [];
  const add = (name, rate, detail, vs) => rows.push([name, rate, detail, vs]);
  const x = (a, b) => `${(a / b).toFixed(2)}x`;
  /** The cairn subject, and "before" next to it when comparing builds. */
  const builds = (run) =>
    before ? { cairn: () => run(current), before: () => run(before) } : { cairn: () => run(current) };
  const subjects = () => (before ? ['cairn', 'before'] : ['cairn']);

  if (runs('W1')) {
    const m1 = await measure({
      ...builds(cairnW1),
      sync: () => rawW1('sync'),
      flushed: () => rawW1('flushed'),
    });
    const lat = (r) => `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`;
    for (const s of subjects()) {
      add(
        `W1 ${s}`,
        `${fmt(m1[s].rate)} ev/s`,
        lat(m1[s]),
        `${x(m1[s].rate, m1.sync.rate)} / ${x(m1[s].rate, m1.flushed.rate)}`,
      );
    }
    add('W1 raw, sync commit', `${fmt(m1.sync.rate)} ev/s`, lat(m1.sync), '');
    add('W1 raw, overlap+flushed', `${fmt(m1.flushed.rate)} ev/s`, lat(m1.flushed), '');
  }

  if (runs('W2')) {
    const m2 = await measure({
      ...builds(cairnW2),
      sync: () => rawW2('sync'),
      flushed: () => rawW2('flushed'),
    });
    for (const s of subjects()) {
      add(
        `W2 ${s}`,
        `${fmt(m2[s].rate)} ev/s`,
        '',
        `${x(m2[s].rate, m2.sync.rate)} / ${x(m2[s].rate, m2.flushed.rate)}`,
      );
    }
    add('W2 raw, sync commit', `${fmt(m2.sync.rate)} ev/s`, '', '');
    add('W2 raw, overlap+flushed', `${fmt(m2.flushed.rate)} ev/s`, '', '');
  }

  if (runs('W3')) {
    const m3 = await measure({ ...builds(cairnW3), raw: rawW3 });
    const w3detail = (r) => `${fmt(r.cpuRate)} ev/CPU-s, heap +${r.heapMb.toFixed(1)} MB`;
    for (const s of subjects()) {
      add(
        `W3 ${s} replay`,
        `${fmt(m3[s].rate)} ev/s`,
        w3detail(m3[s]),
        `${x(m3[s].rate, m3.raw.rate)} (CPU ${x(m3[s].cpuRate, m3.raw.cpuRate)})`,
      );
    }
    add('W3 raw replay', `${fmt(m3.raw.rate)} ev/s`, w3detail(m3.raw), '');
  }

  if (runs('W5')) {
    const m5 = await measure({
      ...builds(cairnW5),
      sync: () => rawW5('sync'),
      flushed: () => rawW5('flushed'),
    });
    const snap = (r) => `${fmt(r.saves)} saves/s, ${fmt(r.loads)} loads/s`;
    for (const s of subjects()) {
      add(
        `W5 ${s}`,
        snap(m5[s]),
        '',
        `saves ${x(m5[s].saves, m5.sync.saves)} / ${x(m5[s].saves, m5.flushed.saves)}, loads ${x(m5[s].loads, m5.sync.loads)}`,
      );
    }
    add('W5 raw, sync commit', snap(m5.sync), '', '');
    add('W5 raw, overlap+flushed', snap(m5.flushed), '', '');
  }

  const header = ['workload', 'figure', 'detail', 'cairn / raw (sync / overlap)'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  for (const r of [header, ...rows]) console.log(r.map((v, c) => v.padEnd(widths[c])).join(' | '));
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
