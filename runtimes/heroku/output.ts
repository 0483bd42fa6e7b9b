/**
 * Collects a one-off dyno's output: finds and strips the exit-status marker
 * the command wrapper prints last, and keeps at most `maxBytes` bytes of
 * output (the tools' OutputCap: cut on a UTF-8 character boundary). Works on
 * bytes, so a marker or a multi-byte character split across chunks is no
 * problem, and the output is passed through unchanged (no CRLF rewriting: with
 * force_no_tty the stream carries the process's raw bytes).
 */
import { OutputCap } from '../../tool-call/output-cap';

const MARKER_PREFIX = '\uFFFF heroku-command-exit-status: ';
const MARKER_BYTES = Buffer.from(MARKER_PREFIX, 'utf8');
/** After the prefix: the status, then the echo's newline (`\r\n` should a TTY ever be involved). */
const MARKER_TAIL = /^(\d{1,10})\r?\n/;
/** At the very end of the stream the newline may be missing. */
const MARKER_TAIL_AT_END = /^(\d{1,10})\r?$/;
/** Bytes held back from the output until we know they are not the marker. */
const HOLD_BACK = MARKER_BYTES.length + 10 + 2;

/**
 * The command followed by an `echo` of the marker with `$?`, as the Heroku
 * CLI's `run --exit-code` does, except that the command runs in a subshell on
 * lines of its own: a command that calls `exit`, ends in a `#` comment, `;` or
 * `&` still reports its status instead of losing the marker.
 */
export function withExitStatusMarker(command: string): string {
  return `(\n${command}\n)\necho "${MARKER_PREFIX}$?"`;
}

export interface CollectedOutput {
  output: string;
  exitStatus: number | null;
  truncated: boolean;
}

/**
 * The marker is recognised wherever it appears as `\uFFFF heroku-command-exit-status: N`
 * followed by a newline (or the end of the stream), and removed; the last one
 * gives the exit status. Output that arrives after it stays output: stdout and
 * stderr may reach us out of order, and a background process may write on.
 * (U+FFFF is a noncharacter: ordinary output does not contain it.)
 */
export class OutputCollector {
  private readonly cap: OutputCap;
  private pending: Buffer = Buffer.alloc(0);
  private received = 0;
  private status: number | null = null;

  constructor(maxBytes: number) {
    this.cap = new OutputCap(maxBytes);
  }

  /** Output bytes received so far (including what the cap discards). */
  get bytes(): number {
    return this.received;
  }

  /** The exit status, once the marker has come: the command has finished. */
  get exitStatus(): number | null {
    return this.status;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.received += chunk.length;
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    // Take out every complete marker, committing the output before it.
    let from = 0;
    for (;;) {
      const i = buf.indexOf(MARKER_BYTES, from);
      if (i < 0) break;
      const after = buf.subarray(i + MARKER_BYTES.length, i + HOLD_BACK).toString('latin1');
      const tail = MARKER_TAIL.exec(after);
      if (tail) {
        this.status = Number.parseInt(tail[1] ?? '', 10);
        this.cap.push(buf.subarray(0, i));
        buf = buf.subarray(i + MARKER_BYTES.length + tail[0].length);
        from = 0;
        continue;
      }
      if (/^\d{0,10}\r?$/.test(after)) break; // may still complete with the next chunk
      from = i + 1; // not a marker after all: ordinary output
    }
    // Hold back the last bytes: they may be the start of a marker.
    if (buf.length > HOLD_BACK) {
      this.cap.push(buf.subarray(0, buf.length - HOLD_BACK));
      buf = buf.subarray(buf.length - HOLD_BACK);
    }
    this.pending = Buffer.from(buf);
  }

  /** Call once the stream has ended. */
  finish(): CollectedOutput {
    let rest = this.pending;
    const i = rest.lastIndexOf(MARKER_BYTES);
    if (i >= 0) {
      const tail = MARKER_TAIL_AT_END.exec(rest.subarray(i + MARKER_BYTES.length).toString('latin1'));
      if (tail) {
        this.status = Number.parseInt(tail[1] ?? '', 10);
        rest = rest.subarray(0, i);
      }
    }
    this.cap.push(rest);
    this.pending = Buffer.alloc(0);
    const { text, truncated } = this.cap.finish();
    return { output: text, exitStatus: this.status, truncated };
  }
}
