import { LmdbMessageJournal, LmdbSnapshotStore } from '@cairn/journal-lmdb';

export async function main(path: string): Promise<number> {
  const journal = await LmdbMessageJournal.open<{ type: string; amount: number }>({ path });
  const snapshots = await LmdbSnapshotStore.open<number>({ path }); // shares the journal's environment
  try {
    await journal.append('account-42', { type: 'deposited', amount: 10 }); // resolves once synced to disk
    await journal.appendBatch('account-42', [
      { type: 'deposited', amount: 5 },
      { type: 'withdrawn', amount: 3 },
    ]); // atomic: all or nothing, also across a crash

    const snapshot = await snapshots.loadLatest('account-42');
    let balance = snapshot?.state ?? 0;
    for await (const { message } of journal.readFrom('account-42', (snapshot?.sequenceNr ?? 0) + 1)) {
      balance += message.type === 'deposited' ? message.amount : -message.amount;
    }
    await snapshots.save('account-42', await journal.highestSequenceNr('account-42'), balance);
    return balance; // 12 on a fresh path
  } finally {
    await Promise.all([journal.close(), snapshots.close()]);
  }
}
