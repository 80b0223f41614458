import {
  ActorStoppedError,
  AskTimeoutError,
  ConfigError,
  DuplicatePersistenceIdError,
  isPersistenceError,
  JournalClosedError,
  JournalCorruptedError,
  JournalLockedError,
  LeaseHeldError,
  LeaseLostError,
  PersistenceError,
  type PersistenceErrorCode,
  ReadOnlyError,
  RecoveryFailedError,
  SequenceConflictError,
  SnapshotCorruptedError,
  SnapshotStoreClosedError,
  StashOverflowError,
  StorageError,
  WriteRejectedError,
} from '@cairn/actor-core';
import { RepairRefusedError } from '@cairn/journal-file';

const samples: Array<[PersistenceError, string, PersistenceErrorCode]> = [
  [new JournalClosedError(), 'JournalClosedError', 'ERR_JOURNAL_CLOSED'],
  [new SnapshotStoreClosedError(), 'SnapshotStoreClosedError', 'ERR_SNAPSHOT_STORE_CLOSED'],
  [new ReadOnlyError('/data', 'save refused'), 'ReadOnlyError', 'ERR_READ_ONLY'],
  [new StashOverflowError('a', 10), 'StashOverflowError', 'ERR_STASH_OVERFLOW'],
  [new DuplicatePersistenceIdError('a'), 'DuplicatePersistenceIdError', 'ERR_DUPLICATE_PERSISTENCE_ID'],
  [new RepairRefusedError('a', 'reads back clean'), 'RepairRefusedError', 'ERR_REPAIR_REFUSED'],
  [new SequenceConflictError('a', 1, 2), 'SequenceConflictError', 'ERR_SEQUENCE_CONFLICT'],
  [
    new JournalLockedError('/data', { pid: 4242, staleMs: 10000 }),
    'JournalLockedError',
    'ERR_JOURNAL_LOCKED',
  ],
  [
    new JournalCorruptedError({
      persistenceId: 'a',
      sequenceNr: 3,
      file: 'x.log',
      offset: 96,
      reason: 'CRC mismatch',
    }),
    'JournalCorruptedError',
    'ERR_JOURNAL_CORRUPTED',
  ],
  [
    new SnapshotCorruptedError({ persistenceId: 'a', sequenceNr: 3, key: 'a#3', reason: 'bad magic' }),
    'SnapshotCorruptedError',
    'ERR_SNAPSHOT_CORRUPTED',
  ],
  [new RecoveryFailedError('a', 'gap at 4', { sequenceNr: 4 }), 'RecoveryFailedError', 'ERR_RECOVERY_FAILED'],
  [new ConfigError(['one', 'two']), 'ConfigError', 'ERR_CONFIG'],
  [new WriteRejectedError('a', 'nope'), 'WriteRejectedError', 'ERR_WRITE_REJECTED'],
  [new StorageError('disk full'), 'StorageError', 'ERR_STORAGE'],
  [new AskTimeoutError('actor a', 50), 'AskTimeoutError', 'ERR_ASK_TIMEOUT'],
  [new ActorStoppedError('actor a', 'stopped'), 'ActorStoppedError', 'ERR_ACTOR_STOPPED'],
  [new LeaseHeldError('a', 'host:42:ab', new Date(0)), 'LeaseHeldError', 'ERR_LEASE_HELD'],
  [new LeaseLostError('a', 3, 'host:43:cd'), 'LeaseLostError', 'ERR_LEASE_LOST'],
];

describe.each(samples)('%p', (error, name, code) => {
  it('has its class name as name, a stable code, and is a PersistenceError', () => {
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error).toBeInstanceOf(PersistenceError);
    expect(error).toBeInstanceOf(Error);
    expect(isPersistenceError(error)).toBe(true);
    expect(isPersistenceError(error, code)).toBe(true);
    // @ts-expect-error the catalogue is closed: a code outside it does not compile
    expect(isPersistenceError(error, 'ERR_SOMETHING_ELSE')).toBe(false);
  });
});

it('isPersistenceError works on an error from another copy of the package', () => {
  const foreign = Object.assign(new Error('x'), { code: 'ERR_JOURNAL_CLOSED' });
  Object.defineProperty(foreign, Symbol.for('cairn.PersistenceError'), { value: true });
  expect(isPersistenceError(foreign, 'ERR_JOURNAL_CLOSED')).toBe(true);
  expect(isPersistenceError(new Error('plain'))).toBe(false);
  expect(isPersistenceError(null)).toBe(false);
  expect(isPersistenceError({ code: 'ERR_JOURNAL_CLOSED' })).toBe(false);
});

it('corruption errors carry and state where the damage is', () => {
  const e = new JournalCorruptedError({
    persistenceId: 'acct-1',
    sequenceNr: 17,
    file: '/d/0001.log',
    offset: 4096,
    reason: 'CRC mismatch',
  });
  expect(e).toMatchObject({ persistenceId: 'acct-1', sequenceNr: 17, file: '/d/0001.log', offset: 4096 });
  expect(e.message).toContain('/d/0001.log');
  expect(e.message).toContain('4096');
  expect(e.message).toContain('17');
  expect(e.message).toContain('acct-1');
  const s = new SnapshotCorruptedError({ persistenceId: 'p', sequenceNr: 9, key: 'p#9', reason: 'bad' });
  expect(s).toMatchObject({ persistenceId: 'p', sequenceNr: 9, key: 'p#9' });
  expect(s.message).toContain('p#9');
});

it('errors keep their cause', () => {
  const cause = new Error('EIO');
  expect(new StorageError('write failed', { cause }).cause).toBe(cause);
});

it('a lock error tells the operator who holds it and what to do', () => {
  const e = new JournalLockedError('./data', {
    pid: 4242,
    since: new Date('2026-11-23T10:02:00Z'),
    staleMs: 10000,
  });
  expect(e.message).toContain('pid 4242');
  expect(e.message).toContain('2026-11-23T10:02:00');
  expect(e.message).toContain('10 s');
});

it('a config error lists every problem', () => {
  const e = new ConfigError(['journal.provider: missing', 'snapshots.path: must be a string']);
  expect(e.problems).toHaveLength(2);
  expect(e.message).toContain('journal.provider: missing');
  expect(e.message).toContain('snapshots.path: must be a string');
});
