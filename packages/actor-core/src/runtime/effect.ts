/** Something to do once an effect's events are durable and applied. */
export type SideEffect<S> =
  | { readonly kind: 'run'; readonly fn: (state: S) => void }
  | { readonly kind: 'reply'; readonly fn: (state: S) => unknown };

/**
 * What a command handler decides: events to persist (atomically, in one appendBatch), then side effects
 * that run in order only after those events are durable and applied to the state, then optionally stop.
 *
 * Effects are immutable values: `thenRun`, `thenReply` and `thenStop` return a new effect.
 *
 * @typeParam E - the event type
 * @typeParam S - the state type the side effects see
 */
export class Effect<E = never, S = unknown> {
  /** The events to persist, in order; empty for none. */
  readonly events: readonly E[];
  /** Runs in order after the events are durable and applied, with the state after them. */
  readonly sideEffects: readonly SideEffect<S>[];
  /** Stop the actor after the side effects; commands still waiting are rejected with ActorStoppedError. */
  readonly stops: boolean;

  private constructor(events: readonly E[], sideEffects: readonly SideEffect<S>[], stops: boolean) {
    this.events = events;
    this.sideEffects = sideEffects;
    this.stops = stops;
  }

  /**
   * Persist one event, or several given as an array (atomically: all of them or none, consecutive
   * sequenceNrs). The journal write uses expectedSequenceNr = the actor's last sequenceNr, so a second
   * writer of the same id (another process) is refused rather than interleaved.
   */
  static persist<E, S = unknown>(events: E | readonly E[]): Effect<E, S> {
    const list: readonly E[] = Array.isArray(events) ? [...(events as readonly E[])] : [events as E];
    if (list.length === 0) throw new RangeError('Effect.persist needs at least one event; use Effect.none()');
    return new Effect<E, S>(list, [], false);
  }

  /** Reply to the asker (ignored for a tell) without persisting anything. */
  static reply<E = never, S = unknown>(value: unknown): Effect<E, S> {
    return new Effect<E, S>([], [{ kind: 'reply', fn: () => value }], false);
  }

  /** Do nothing; an ask gets no reply (it times out) unless a later side effect replies. */
  static none<E = never, S = unknown>(): Effect<E, S> {
    return new Effect<E, S>([], [], false);
  }

  /** Stop the actor once this command is handled; the commands still waiting are rejected. */
  static stop<E = never, S = unknown>(): Effect<E, S> {
    return new Effect<E, S>([], [], true);
  }

  /** Run `fn` with the new state, only after the events are durable and applied. */
  thenRun(fn: (state: S) => void): Effect<E, S> {
    if (typeof fn !== 'function') throw new TypeError('thenRun needs a function');
    return new Effect<E, S>(this.events, [...this.sideEffects, { kind: 'run', fn }], this.stops);
  }

  /** Reply to the asker with `fn(newState)`, only after the events are durable and applied. */
  thenReply(fn: (state: S) => unknown): Effect<E, S> {
    if (typeof fn !== 'function') throw new TypeError('thenReply needs a function');
    return new Effect<E, S>(this.events, [...this.sideEffects, { kind: 'reply', fn }], this.stops);
  }

  /** Stop the actor after the events are durable and the side effects ran. */
  thenStop(): Effect<E, S> {
    return new Effect<E, S>(this.events, this.sideEffects, true);
  }
}
