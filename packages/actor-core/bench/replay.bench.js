// Replay speed of the core's readFrom on the memory journal (no storage cost): the journal machinery's
// share of W3. Not part of npm test. Run after `npm run build`:
//   node packages/actor-core/bench/replay.bench.js [events=300000] [passes=3]
const { MemoryMessageJournal } = require('../dist');

async function main() {
  const events = Number(process.argv[2] ?? 300_000);
  const passes = Number(process.argv[3] ?? 3);
  const journal = await MemoryMessageJournal.open();
  const note = 'x'.repeat(100);
  for (let done = 0; done < events; done += 1000) {
    const batch = Array.from({ length: Math.min(1000, events - done) }, (_, i) => ({
      type: 'Deposited',
      amount: done + i,
      account: 'acct-1',
      note,
    }));
    await journal.appendBatch('acct-1', batch);
  }
  for (let pass = 1; pass <= passes; pass++) {
    const start = process.hrtime.bigint();
    let read = 0;
    for await (const _ of journal.readFrom('acct-1', 1)) read++;
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    console.log(
      `pass ${pass}: ${read} events in ${ms.toFixed(0)} ms = ${(((read / ms) * 1000) / 1e6).toFixed(2)} M events/s`,
    );
  }
  await journal.close();
}

main();
