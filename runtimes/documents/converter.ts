/**
 * Converts fetched documents to Markdown in separate processes, never on the
 * worker's own thread: a hostile page or PDF can keep a converter busy, but
 * the worker keeps heartbeating and running other calls. Up to
 * CONVERTER_PROCESSES converter processes (./converter-process.ts) are kept
 * and reused; more conversions wait for one. Each converter runs under
 * `prlimit --data` with CONVERTER_MAX_MEMORY_MB (a hard cap that also covers
 * the ArrayBuffers pdf.js decodes into, which no V8 heap limit does) and half
 * of that as its JavaScript heap. A conversion that the caller abandons (the
 * tool's ttl ran out, the run was cancelled) kills its process; the next
 * conversion starts a new one.
 */
import workerpool from 'workerpool';
import type { ConverterSettings } from '../../common/config';
import { ToolError } from '../../tool-call/tool-error';
import type { Conversion } from './converter-process';
import type { HtmlInput } from './html-markdown';
import type { PdfInput } from './pdf-markdown';

/** Content that could not be converted, or a converter that failed; the message starts with the document's URL. */
export class ConversionError extends ToolError {}

type Jobs = { html: HtmlInput; pdf: PdfInput };

export class DocumentConverter {
  private pool: workerpool.Pool | undefined;

  constructor(private readonly settings: ConverterSettings) {}

  /** The document at `url` as Markdown. Rejects with the signal's reason as soon as it aborts (and kills that converter). */
  async convert<K extends keyof Jobs>(kind: K, input: Jobs[K], url: URL, signal: AbortSignal): Promise<string> {
    signal.throwIfAborted();
    const task = this.processes().exec(kind, [input]);
    // A queued task leaves the queue; a running one takes its process with it. The task itself rejects then.
    const cancel = () => void task.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      const result = (await task) as Conversion;
      if ('problem' in result) throw new ConversionError(`${url} ${result.problem}`);
      return result.markdown;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (err instanceof ConversionError) throw err;
      throw new ConversionError(`${url} could not be converted: ${this.failure(err)}`, { cause: err });
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /** Ends every converter process. */
  async close(): Promise<void> {
    await this.pool?.terminate(true);
  }

  private processes(): workerpool.Pool {
    const { processes, maxMemoryMb, env } = this.settings;
    this.pool ??= workerpool.pool(require.resolve('./converter-process'), {
      workerType: 'process',
      maxWorkers: processes,
      emitStdStreams: true, // read and dropped: without it the converters would write into the worker's log
      forkOpts: {
        // prlimit sets the limit, then runs node with this process's loader flags (tsx), so the .ts entry loads.
        execPath: 'prlimit',
        execArgv: [
          `--data=${maxMemoryMb * 1024 * 1024}`,
          '--',
          process.execPath,
          `--max-old-space-size=${Math.floor(maxMemoryMb / 2)}`,
          ...process.execArgv,
        ],
        env,
        serialization: 'advanced', // documents travel as bytes, not as JSON arrays of numbers
      },
    });
    return this.pool;
  }

  /** Why a converter failed, in words; running out of memory names the setting. */
  private failure(err: unknown): string {
    const message = err instanceof Error ? err.message : String(err);
    const limit = `${this.settings.maxMemoryMb} MiB, the converter's limit (CONVERTER_MAX_MEMORY_MB)`;
    if (/allocation failed|out of memory/i.test(message)) return `it needed more than ${limit}`;
    // Under prlimit, running out of memory ends the process: V8 aborts, or native code crashes on a failed malloc.
    const ended = /terminated Unexpectedly[\s\S]*signalCode: `(\w+)`/.exec(message)?.[1] ?? /exitCode: `(\d+)`/.exec(message)?.[1];
    if (ended) return `the converter process died (${ended}), as it does when a document needs more than ${limit}`;
    return message;
  }
}
