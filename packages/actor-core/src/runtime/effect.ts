/** Something to do once an effect's events are durable and applied. */
export type SideEffect<S, R = unknown> =
  | { readonly kind: 'run'; readonly fn: (state: S) => void }
  | { readonly kind: 'reply'; readonly fn: (state: S) => R };

/**
 * `Effect`'s factories with the behavior's types fixed: the third argument of every command handler, and
 * `Effect.typed<E, S, R>()` for helpers. Chains of any length are typed from their start:
 * `effect.persist({ type: 'checkedOut' }).thenRun((s) => ...).thenReply((s) => s.items).thenStop()`.
 */
export interface Effects<E, S, R> {
  /** See `Effect.persist`; the event is checked against the behavior's event type. */
  persist(events: E | readonly E[]): Effect<E, S, R>;
  /** See `Effect.reply`; the value is checked against the behavior's reply type. */
  reply(value: R): Effect<E, S, R>;
  /** See `Effect.none`. */
  none(): Effect<E, S, R>;
  /** See `Effect.stop`. */
  stop(): Effect<E, S, R>;
}

/**
 * What a command handler decides: events to persist (atomically, in one appendBatch), then side effects
 * that run in order only after those events are durable and applied to the state, then optionally stop.
 *
 * Effects are immutable values: `thenRun`, `thenReply` and `thenStop` return a new effect.
 *
 * The types follow the behavior without type arguments: in a command handler of
 * `EventSourcedBehavior.create<Cmd, Evt, State, Reply>`, `Effect.persist({ type: 'added', item })` keeps
 * the event's literal type (checked against `Evt` where the handler returns it), and
 * `.thenReply((state) => ...)` takes `State` and `Reply` from the handler's return type. An effect built
 * in a helper function outside the handler is typed `Effect<TheEvent, unknown, never>` and gets the same
 * types when the handler chains `thenRun` / `thenReply` onto it or returns it. Inference reaches the
 * last call of a chain only: for `.thenRun(fn).thenReply(fn)` or `.thenReply(fn).thenStop()`, start from
 * the handler's third argument (`(state, cmd, effect) => effect.persist(...)...`, typed `Effects<E, S, R>`)
 * or from `Effect.typed<E, S, R>()`.
 *
 * @typeParam E - the event type (what `persist` was given)
 * @typeParam S - the state type the side effects see (`unknown` until a side effect needs it)
 * @typeParam R - the reply type (`never` when the effect replies nothing)
 */
export class Effect<out E = never, in S = unknown, out R = never> {
  /** The events to persist, in order; empty for none. */
  readonly events: readonly E[];
  /** Runs in order after the events are durable and applied, with the state after them. */
  readonly sideEffects: readonly SideEffect<S, R>[];
  /** Stop the actor after the side effects; commands still waiting are rejected with ActorStoppedError. */
  readonly stops: boolean;

  private constructor(events: readonly E[], sideEffects: readonly SideEffect<S, R>[], stops: boolean) {
    this.events = events;
    this.sideEffects = sideEffects;
    this.stops = stops;
  }

  /**
   * Persist one event, or several given as an array (atomically: all of them or none, consecutive
   * sequenceNrs). The journal write uses expectedSequenceNr = the actor's last sequenceNr, so a second
   * writer of the same id (another process) is refused rather than interleaved.
   *
   * The event's literal types are kept (`{ type: 'added' }` stays `'added'`), so the effect fits the
   * behavior's event union without type arguments; `Effect.persist<Evt, State>(...)` still names them.
   */
  static persist<const E, S = unknown>(events: E | readonly E[]): Effect<E, S, never> {
    const list: readonly E[] = Array.isArray(events) ? [...(events as readonly E[])] : [events as E];
    if (list.length === 0) throw new RangeError('Effect.persist needs at least one event; use Effect.none()');
    return new Effect<E, S, never>(list, [], false);
  }

  /**
   * Reply `value` to the asker (ignored for a tell) without persisting anything. The type argument is
   * the reply's: `Effect.reply<number>(state.total)`.
   */
  static reply<R>(value: R): Effect<never, unknown, R> {
    return new Effect<never, unknown, R>([], [{ kind: 'reply', fn: () => value }], false);
  }

  /**
   * The factories with event, state and reply types fixed, for effects built in helpers:
   * `const effect = Effect.typed<Evt, Cart, Reply>()`. Command handlers get the same as third argument.
   */
  static typed<E, S, R = unknown>(): Effects<E, S, R> {
    return FACTORIES as Effects<E, S, R>;
  }

  /** Do nothing; an ask gets no reply (it times out) unless a later side effect replies. */
  static none(): Effect<never, unknown, never> {
    return new Effect<never, unknown, never>([], [], false);
  }

  /**
   * Stop the actor once this command is handled; the commands still waiting are rejected. An ask of
   * this command is rejected at once with ActorStoppedError unless the effect replies first
   * (`Effect.reply(value).thenStop()`).
   */
  static stop(): Effect<never, unknown, never> {
    return new Effect<never, unknown, never>([], [], true);
  }

  /**
   * Run `fn` with the new state, only after the events are durable and applied. The state's type comes
   * from where the effect is returned (the behavior's state) unless this effect already fixed it.
   */
  thenRun<S2 extends S = S>(fn: (state: S2) => void): Effect<E, S2, R> {
    if (typeof fn !== 'function') throw new TypeError('thenRun needs a function');
    return new Effect<E, S2, R>(this.events, [...this.sideEffects, { kind: 'run', fn }], this.stops);
  }

  /**
   * Reply to the asker with `fn(newState)`, only after the events are durable and applied. State and
   * reply types come from where the effect is returned (the behavior's), or from `fn`.
   */
  thenReply<S2 extends S = S, R2 = R>(fn: (state: S2) => R2): Effect<E, S2, R | R2> {
    if (typeof fn !== 'function') throw new TypeError('thenReply needs a function');
    return new Effect<E, S2, R | R2>(this.events, [...this.sideEffects, { kind: 'reply', fn }], this.stops);
  }

  /** Stop the actor after the events are durable and the side effects ran. */
  thenStop(): Effect<E, S, R> {
    return new Effect<E, S, R>(this.events, this.sideEffects, true);
  }
}

const FACTORIES: Effects<unknown, unknown, unknown> = {
  persist: (events) => Effect.persist(events),
  reply: (value) => Effect.reply(value),
  none: () => Effect.none(),
  stop: () => Effect.stop(),
};
