/**
 * The child process of the crash harness: it writes to a configured journal (and snapshot store) as fast
 * as it can and prints every acknowledgment, until the parent kills it with SIGKILL.
 *
 * Output lines (stdout is a pipe, written synchronously on Linux, so a printed line was acknowledged):
 *   ready
 *   ack <id-index> <firstSeq> <lastSeq>
 *   snap <id-index> <seq>
 * The spec comes as JSON in the CAIRN_CRASH_SPEC environment variable (see CrashWriterSpec).
 */
import { ActorSystem, createPersistence } from '@cairn/actor-core';
import { seededRandom } from './corruption';
import { crashAccount } from './crash-account';
import { type CrashWriterSpec, crashEvent, crashState } from './crash-events';

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.CAIRN_CRASH_SPEC ?? '') as CrashWriterSpec;
  const persistence = await createPersistence(spec.config);
  const random = seededRandom(spec.seed);
  const print = (line: string) => process.stdout.write(`${line}\n`);
  print('ready');

  const writeId = async (i: number): Promise<void> => {
    const id = `${spec.prefix}-${i}`;
    let highest = await persistence.journal.highestSequenceNr(id);
    let nextSnapshot = spec.snapshotEvery > 0 ? highest + spec.snapshotEvery : Number.POSITIVE_INFINITY;
    for (;;) {
      const count = random() < spec.batchShare ? 2 + Math.floor(random() * 7) : 1;
      const events = Array.from({ length: count }, (_, k) => crashEvent(i, highest + 1 + k));
      const seqs =
        count === 1
          ? [await persistence.journal.append(id, events[0], { expectedSequenceNr: highest })]
          : await persistence.journal.appendBatch(id, events, { expectedSequenceNr: highest });
      print(`ack ${i} ${seqs[0]} ${seqs[seqs.length - 1]}`);
      highest = seqs[seqs.length - 1]!;
      if (highest >= nextSnapshot) {
        await persistence.snapshots.save(id, highest, crashState(i, highest));
        print(`snap ${i} ${highest}`);
        nextSnapshot = highest + spec.snapshotEvery;
      }
    }
  };
  const driveActor = async (system: ActorSystem, i: number): Promise<void> => {
    const ref = await system.spawn(
      crashAccount(spec.prefix, i, {
        snapshotEvery: spec.snapshotEvery,
        onSnapshot: (seq) => print(`snap ${i} ${seq}`),
      }),
    );
    for (;;) {
      const seq = (await ref.ask('deposit', { timeoutMs: 60_000 })) as number;
      print(`ack ${i} ${seq} ${seq}`);
    }
  };
  if (spec.mode === 'actor') {
    const system = await ActorSystem.create({ persistence });
    await Promise.all(Array.from({ length: spec.ids }, (_, i) => driveActor(system, i)));
  } else {
    await Promise.all(Array.from({ length: spec.ids }, (_, i) => writeId(i)));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`crash writer failed: ${(e as Error)?.stack ?? e}\n`);
  process.exit(3);
});
