/*
 * FileSnapshotStore figures beside the disk's own fsync rate (the workload table W5: "snapshot save limited by
 * the fsyncs it needs"). Not part of npm test. Runs the built package:
 *
 *   npm run build && node packages/snapshot/bench/file-snapshot-store.bench.js [count] [dir]
 *
 * Prints saves/s for first saves (a new id each: the id's directory is created too), for saves to
 * existing ids, and loads/s one at a time and 32 at a time, with a 10 KB state, fsync on.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist', 'index.js');
if (!fs.existsSync(dist)) {
  process.stderr.write(`${dist} is missing: run \`npm run build\` first\n`);
  process.exit(2);
}
const { FileSnapshotStore } = require(dist);

const count = Number(process.argv[2] ?? 1000);
const base = process.argv[3] ?? os.tmpdir();

function state(n) {
  const history = Array.from({ length: 76 }, (_, k) => ({ seq: k, amount: n + k, note: 'x'.repeat(100) }));
  return { account: `acct-${n}`, balance: n, history };
}

async function timed(label, total, run) {
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `${label.padEnd(44)} ${Math.round(total / seconds)
      .toString()
      .padStart(7)} /s\n`,
  );
}

function fdatasyncRate(dir, rounds) {
  const file = path.join(dir, 'fdatasync-probe');
  const fd = fs.openSync(file, 'w');
  const bytes = Buffer.alloc(10 * 1024, 7);
  try {
    const started = performance.now();
    for (let k = 0; k < rounds; k++) {
      fs.writeSync(fd, bytes, 0, bytes.length, 0);
      fs.fdatasyncSync(fd);
    }
    return rounds / ((performance.now() - started) / 1000);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file);
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(base, 'cairn-snapshot-bench-'));
  const states = Array.from({ length: count }, (_, n) => state(n));
  const store = await FileSnapshotStore.open({ path: dir, reporter: () => {} });
  try {
    process.stdout.write(
      `${count} snapshots of ${(JSON.stringify(states[0]).length / 1024).toFixed(1)} KiB (JSON size), fsync on, ${store.path}\n`,
    );
    await timed('save, first of an id (creates its directory)', count, async () => {
      for (let n = 0; n < count; n++) await store.save(`id-${n}`, 1, states[n]);
    });
    await timed('save, id with a directory', count, async () => {
      for (let n = 0; n < count; n++) await store.save(`id-${n}`, 2, states[n]);
    });
    await timed('loadLatest, one at a time', count, async () => {
      for (let n = 0; n < count; n++) await store.loadLatest(`id-${n}`);
    });
    await timed('loadLatest, 32 at a time', count, async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < count) await store.loadLatest(`id-${next++}`);
        }),
      );
    });
    const rate = fdatasyncRate(dir, Math.min(count, 300));
    process.stdout.write(
      `${'this disk: 10 KB write + fdatasync'.padEnd(44)} ${Math.round(rate).toString().padStart(7)} /s\n`,
    );
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
