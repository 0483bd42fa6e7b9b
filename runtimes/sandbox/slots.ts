/**
 * A worker's sandbox slots (SANDBOX_MAX_CONCURRENT): at most `size` calls
 * run at once; the others wait in arrival order until a slot frees, their
 * deadline passes or they are cancelled.
 */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('the number of sandbox slots must be a positive integer');
  }

  /** Takes a slot if one is free. */
  tryAcquire(): boolean {
    if (this.used >= this.size) return false;
    this.used++;
    return true;
  }

  /**
   * Resolves true once the caller holds a slot (release it with release()),
   * false if `timeoutMs` passed first; rejects with the signal's reason on abort.
   */
  acquire(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryAcquire()) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      const leave = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const index = this.waiting.indexOf(grant);
        if (index >= 0) this.waiting.splice(index, 1);
      };
      const grant = (): void => {
        leave();
        this.used++;
        resolve(true);
      };
      const onAbort = (): void => {
        leave();
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        leave();
        resolve(false);
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  release(): void {
    this.used--;
    this.waiting[0]?.();
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }
}
