import { SystemUnavailableError } from '../src/system';
import { cairnMemorySystem, loadOpener, requireProvider } from '../src/systems/cairn';

test('a package that fails to import makes its system unavailable, saying which', async () => {
  const missing = loadOpener('@cairn/no-such-package', 'Anything');
  await expect(missing).rejects.toBeInstanceOf(SystemUnavailableError);
  await expect(missing).rejects.toThrow(/@cairn\/no-such-package failed to import/);
});

test('a missing export or provider makes its system unavailable, saying which', async () => {
  await expect(loadOpener('@cairn/actor-core', 'NoSuchJournal')).rejects.toThrow(
    /@cairn\/actor-core has no NoSuchJournal\.open/,
  );
  await expect(requireProvider('@cairn/actor-core')).rejects.toThrow(
    /@cairn\/actor-core exports no provider/,
  );
});

test('the memory system reopens the same data from the same directory', async () => {
  const first = await cairnMemorySystem.open('/nowhere/a', { durable: true });
  await first.appendBatch('id', [{ type: 'Deposited', amount: 1, account: 'acct-0', note: 'n' }]);
  await first.snapshots?.save('id', 1, { balance: 1 });
  await first.close();
  const again = await cairnMemorySystem.open('/nowhere/a', { durable: true });
  const amounts: number[] = [];
  expect(await again.replay('id', 1, (e) => amounts.push(e.amount))).toBe(1);
  expect(amounts).toEqual([1]);
  expect(await again.snapshots?.load('id')).toEqual({ sequenceNr: 1, state: { balance: 1 } });
  await again.close();
  const other = await cairnMemorySystem.open('/nowhere/b', { durable: true });
  expect(await other.replay('id', 1, () => undefined)).toBe(0);
  await other.close();
});
