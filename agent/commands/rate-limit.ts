/**
 * Per-point token bucket: `burst` writes back to back, refilled at `perMinute`. Only accepted
 * writes take a token; refused ones cost nothing. In memory on purpose: after a restart every
 * bucket is full again, which is the safe direction for a limit meant to stop a runaway loop.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** 0 when `key` has a token now, else the ms until it has one. Takes nothing. */
  wait(key: string): number {
    const b = this.refill(key);
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * 60_000) / this.perMinute);
  }

  /** Take a token for `key`; returns 0 when allowed, else the ms until a token is available. */
  take(key: string): number {
    const b = this.refill(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 60_000) / this.perMinute);
  }

  /** Return a token taken for a command that then reached no device. */
  giveBack(key: string): void {
    const b = this.refill(key);
    b.tokens = Math.min(this.burst, b.tokens + 1);
  }

  private refill(key: string): { tokens: number; at: number } {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) * this.perMinute) / 60_000);
    b.at = t;
    this.buckets.set(key, b);
    return b;
  }
}
