import { Effect, EventSourcedBehavior } from '@cairn/actor-core';
import { type CrashEvent, crashEvent } from './crash-events';

/** The state of the crash harness's actor: the last event folded in and the sum of the amounts. */
export interface CrashAccountState {
  readonly seq: number;
  readonly sum: number;
}

/**
 * The actor the crash writer drives in actor mode: every command persists the next crash event
 * (verifiable from id and sequenceNr alone) and replies with the new sequenceNr. Snapshots every
 * `snapshotEvery` events, keeping two.
 */
export function crashAccount(
  prefix: string,
  idIndex: number,
  options: {
    readonly snapshotEvery?: number;
    readonly onSnapshot?: (sequenceNr: number) => void;
    readonly onRecovered?: (state: CrashAccountState) => void;
  } = {},
) {
  const snapshotEvery = options.snapshotEvery ?? 0;
  return EventSourcedBehavior.create<'deposit', CrashEvent, CrashAccountState>({
    persistenceId: `${prefix}-${idIndex}`,
    emptyState: { seq: 0, sum: 0 },
    commandHandler: (state) =>
      Effect.persist<CrashEvent, CrashAccountState>(crashEvent(idIndex, state.seq + 1)).thenReply(
        (s) => s.seq,
      ),
    eventHandler: (state, event) => ({ seq: event.n, sum: state.sum + event.amount }),
    ...(snapshotEvery > 0 ? { snapshotEvery, keepSnapshots: 2 } : {}),
    signalHandler: (_state, signal) => {
      if (signal.type === 'snapshotCompleted') options.onSnapshot?.(signal.sequenceNr);
      if (signal.type === 'recoveryCompleted') options.onRecovered?.(signal.state);
    },
  });
}
