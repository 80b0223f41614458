/**
 * Runs tasks one at a time per key, in call order; tasks of different keys run concurrently.
 * Keys with nothing queued hold no memory.
 */
export class KeyedQueue<K = string> {
  private readonly tails = new Map<K, Promise<unknown>>();
  private readonly running = new Set<Promise<unknown>>();

  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const result = previous ? previous.then(task, task) : task();
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    this.running.add(tail);
    void tail.then(() => {
      this.running.delete(tail);
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves when every task queued before the call has settled. */
  async idle(): Promise<void> {
    await Promise.all([...this.running]);
  }
}
