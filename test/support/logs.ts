/** Reading the service's logs in tests: JSON lines (common/log.ts), one object per line. */
import assert from 'node:assert/strict';

export interface LogLine {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  time: string;
  name: string;
  msg: string;
  [field: string]: unknown;
}

/** Every line of `output` as a log object; fails naming the first line that is not one. */
export function logLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        assert.fail(`not a JSON log line: ${line}`);
      }
      const entry = parsed as LogLine;
      assert.ok(
        typeof entry === 'object' &&
          entry !== null &&
          typeof entry.level === 'string' &&
          typeof entry.time === 'string' &&
          typeof entry.msg === 'string',
        `a log line without level, time and msg: ${line}`,
      );
      return entry;
    });
}

/** The one line whose message matches `msg`; fails listing the messages when there is not exactly one. */
export function theLine(lines: LogLine[], msg: RegExp): LogLine {
  const found = lines.filter((l) => msg.test(l.msg));
  assert.equal(found.length, 1, `expected one line matching ${msg}, found ${found.length} in:\n${lines.map((l) => l.msg).join('\n')}`);
  return found[0]!;
}
