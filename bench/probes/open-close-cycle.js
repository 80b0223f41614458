// The file backend's open/close cycle, split by phase, for one build or two side by side (not part of npm
// test or the bench run). A cycle: open FileMessageJournal and FileSnapshotStore (defaults: durable), append
// one event, save one snapshot, read the event back with readFrom and the snapshot with loadLatest, close
// both. Each run is a fresh process doing `--cycles` cycles on one data directory (the first cycle creates
// it and is reported apart); with two builds the runs alternate, so a busy spell of the shared machine hits
// both alike. Prints every run's median per phase and, at the end, the median of the runs' medians.
//   node bench/probes/open-close-cycle.js [--cycles 50] [--runs 3] <packages dir> [<other build's packages dir>]
// The other build needs its own @cairn/* links: see builds-side-by-side.js.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { median, takeOption } = require('./probe-args');

const PHASES = ['openJournal', 'openSnapshots', 'append', 'save', 'read', 'close', 'cycle'];

async function child(packages, cycles) {
  const { FileMessageJournal } = require(path.join(packages, 'journal-file/dist'));
  const { FileSnapshotStore } = require(path.join(packages, 'snapshot/dist'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-cycle-'));
  const times = Object.fromEntries(PHASES.map((p) => [p, []]));
  let first;
  try {
    for (let i = 0; i < cycles; i++) {
      const t = [performance.now()];
      const journal = await FileMessageJournal.open({ path: path.join(dir, 'journal') });
      t.push(performance.now());
      const snapshots = await FileSnapshotStore.open({ path: path.join(dir, 'snapshots') });
      t.push(performance.now());
      const id = `cycle-${i % 50}`;
      const seq = await journal.append(id, { cycle: i, note: 'x'.repeat(100) });
      t.push(performance.now());
      await snapshots.save(id, seq, { cycle: i });
      t.push(performance.now());
      let read = 0;
      for await (const entry of journal.readFrom(id, seq)) {
        if (entry.message.cycle !== i) throw new Error(`cycle ${i}: read back another event`);
        read++;
      }
      const snapshot = await snapshots.loadLatest(id);
      if (read !== 1 || snapshot?.state.cycle !== i) throw new Error(`cycle ${i}: not read back`);
      t.push(performance.now());
      await journal.close();
      await snapshots.close();
      t.push(performance.now());
      const phases = PHASES.slice(0, -1).map((_, k) => t[k + 1] - t[k]);
      phases.push(t[t.length - 1] - t[0]);
      if (i === 0) first = phases[phases.length - 1];
      else
        PHASES.forEach((p, k) => {
          times[p].push(phases[k]);
        });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const result = { first, ...Object.fromEntries(PHASES.map((p) => [p, median(times[p])])) };
  process.stdout.write(JSON.stringify(result));
}

function main() {
  const args = process.argv.slice(2);
  const option = (name, fallback) => takeOption(args, name, fallback);
  const cycles = option('--cycles', 50);
  const runs = option('--runs', 3);
  const builds = args.map((a) => path.resolve(a));
  if (builds.length < 1 || builds.length > 2) {
    console.error('usage: node open-close-cycle.js [--cycles N] [--runs N] <packages> [<other packages>]');
    process.exit(2);
  }
  const results = builds.map(() => []);
  const fmt = (r) =>
    `first ${r.first.toFixed(1)} ms; then median ${PHASES.map((p) => `${p} ${r[p].toFixed(2)}`).join(', ')} ms`;
  for (let run = 0; run < runs; run++) {
    builds.forEach((packages, b) => {
      const out = execFileSync(process.execPath, [__filename, '--child', packages, String(cycles)], {
        encoding: 'utf8',
      });
      const r = JSON.parse(out);
      results[b].push(r);
      console.log(`run ${run + 1} ${packages}: ${fmt(r)}`);
    });
  }
  builds.forEach((packages, b) => {
    const r = Object.fromEntries(['first', ...PHASES].map((p) => [p, median(results[b].map((x) => x[p]))]));
    console.log(`median of ${runs} runs, ${cycles} cycles each, ${packages}: ${fmt(r)}`);
  });
}

if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4])).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main();
}
