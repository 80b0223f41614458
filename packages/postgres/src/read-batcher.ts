/**
 * Group "commit" for point reads: the reads of one kind asked for while earlier ones are on the server go
 * to it together, as ONE statement over all their keys, when one of `maxInFlight` slots frees up (a lone
 * read goes at once: it waits only for the calls made in the same tick). Many actors recovering at once
 * (an application's start) then cost a few round trips per hundred ids instead of a few per id, on a pool
 * of a few connections.
 *
 * Nothing is cached: every read's statement is sent after the read was asked for, so it sees everything
 * committed before the call (what a statement of its own would have seen). A failing statement fails
 * every read of its batch with the same error (a storage error: the server or the connection).
 */
export class ReadBatcher<K, V> {
  private queue: { key: K; resolve: (value: V) => void; reject: (error: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;

  /**
   * @param fetch reads the keys (distinct) in one statement; a key missing from the map gets `missing`.
   * @param maxInFlight how many statements of this kind may be on the server at once.
   * @param maxBatch the most keys one statement takes.
   */
  constructor(
    private readonly fetch: (keys: K[]) => Promise<Map<K, V>>,
    private readonly missing: V,
    private readonly maxInFlight: number,
    private readonly maxBatch: number,
  ) {}

  /** The value of `key`, read by a statement sent after this call. */
  get(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.queue.push({ key, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // The calls made in this tick go together (a recovery storm asks for hundreds at once).
      queueMicrotask(() => {
        this.scheduled = false;
        this.pump();
      });
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      this.fetch([...new Set(batch.map((b) => b.key))])
        .then(
          (found) => {
            for (const b of batch) b.resolve(found.has(b.key) ? (found.get(b.key) as V) : this.missing);
          },
          (e: unknown) => {
            for (const b of batch) b.reject(e);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
