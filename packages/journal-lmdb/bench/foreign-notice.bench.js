// How late a live reader notices commits made by another process (the LMDB journal polls its head
// counter for them, one timer per journal). Not part of `npm test`.
//   npx tsc -b tsconfig.build.json && node packages/journal-lmdb/bench/foreign-notice.bench.js [events=400] [gapMs=20]
// A child process appends `events` events, one every `gapMs` ms (durable); this process reads them with a
// read-only live allEvents. Lag = delivery here - the event's journal timestamp (taken in the child when
// the append was numbered, just before its commit), so it holds the commit with its fsync plus the
// notice (at most one 25 ms poll period); the notice alone is measured from the moment the writer's append
// resolved (sent over IPC). Prints p50, p99 and max of both.
const { fork } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { LmdbMessageJournal } = require('../dist/index.js');

const [events = 400, gapMs = 20] = process.argv.slice(2).map(Number);

async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-lmdb-notice-'));
  try {
    await (await LmdbMessageJournal.open({ path: dir })).close();
    const reader = await LmdbMessageJournal.open({ path: dir, readOnly: true });
    const child = fork(__filename, ['--writer', dir, String(events), String(gapMs)]);
    const resolvedAt = new Map();
    child.on('message', ({ i, at }) => resolvedAt.set(i, at));
    const delivered = new Map();
    const endToEnd = [];
    for await (const e of reader.allEvents({ live: true })) {
      endToEnd.push(Date.now() - e.timestamp);
      delivered.set(e.message.i, Date.now());
      if (endToEnd.length === events) break;
    }
    await new Promise((resolve) => child.on('exit', resolve));
    await reader.close();
    // Delivery here minus the moment the writer's append resolved (committed and synced): the notice alone.
    // Negative when this process saw the commit before the writer's promise resolved.
    const notice = [...delivered].map(([i, at]) => at - resolvedAt.get(i));
    const report = (name, xs) => {
      xs.sort((a, b) => a - b);
      const at = (q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];
      console.log(`${name}: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${xs[xs.length - 1]} ms`);
    };
    console.log(`${events} events appended by another process, one every ${gapMs} ms, read live here:`);
    report('  notice (writer append resolved -> delivered here)', notice);
    report('  end to end (append numbered, commit + fsync, notice)', endToEnd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--writer') {
  const [, dir, n, gap] = process.argv.slice(2);
  (async () => {
    const journal = await LmdbMessageJournal.open({ path: dir });
    for (let i = 0; i < Number(n); i++) {
      await journal.append('w', { i });
      process.send({ i, at: Date.now() });
      await new Promise((resolve) => setTimeout(resolve, Number(gap)));
    }
    await journal.close();
  })();
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
