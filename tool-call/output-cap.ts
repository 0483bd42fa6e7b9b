/**
 * The one output capper of the tools: it keeps the first `max` bytes of a
 * stream, cut on a UTF-8 character boundary, and counts what it drops, so the
 * caller can keep reading (and learn the exit status) without holding more.
 */

/** Every tool keeps what it returns (per stream) under this many bytes. */
export const MAX_OUTPUT_BYTES = 64 * 1024;

export interface CappedText {
  text: string;
  /** Whether bytes were dropped. */
  truncated: boolean;
}

export class OutputCap {
  private readonly kept: Buffer[] = [];
  private size = 0;
  private total = 0;

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError('the output cap must be a non-negative integer');
  }

  /** Keeps up to max + 1 bytes: the extra byte tells whether the cut splits a character. */
  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.max + 1 - this.size;
    if (room <= 0 || chunk.length === 0) return;
    const part = Buffer.from(chunk.subarray(0, room));
    this.kept.push(part);
    this.size += part.length;
  }

  finish(): CappedText {
    const all = Buffer.concat(this.kept, this.size);
    return { text: all.subarray(0, utf8SafeLength(all, this.max)).toString('utf8'), truncated: this.total > this.max };
  }
}

/** The longest prefix of `buf` of at most `max` bytes that does not end inside a UTF-8 sequence. */
export function utf8SafeLength(buf: Buffer, max: number): number {
  if (buf.length <= max) return buf.length;
  let end = Math.max(0, max);
  const continues = (i: number) => ((buf[i] ?? 0) & 0xc0) === 0x80;
  // buf[end] is the first byte left out: if it continues a character, that character
  // started before the cut: leave it out entirely (a sequence is at most 4 bytes).
  for (let i = 0; i < 3 && end > 0 && continues(end); i++) end--;
  if (continues(end)) return Math.max(0, max); // not UTF-8 anyway: cut at max
  return end;
}
