/**
 * The one-off dyno's pure parts: the exit-status marker and the output cap of
 * its collector, the command wrapper, the attach_url parser, and its timing
 * budget against the tool activity's timeout.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TOOL_ACTIVITY_MARGIN_SECONDS } from '../../contract/tool-defaults';
import { STARTUP_TIMEOUT_MS, STOP_WAIT_MS, TTL_GRACE_MS } from '../../runtimes/heroku/one-off-dyno';
import { OutputCollector, withExitStatusMarker } from '../../runtimes/heroku/output';
import { parseAttachUrl } from '../../runtimes/heroku/rendezvous';
import { utf8SafeLength } from '../../tool-call/output-cap';

const MARKER = '\uFFFF heroku-command-exit-status: ';

test('start-up, ttl grace and the stop call fit in the margin the workflow gives the tool activity', () => {
  // The activity's start-to-close timeout is ttl + TOOL_ACTIVITY_MARGIN_SECONDS: a slow platform must
  // end in a readable error and a stopped dyno before Temporal times the activity out.
  assert.ok(STARTUP_TIMEOUT_MS + TTL_GRACE_MS + STOP_WAIT_MS < TOOL_ACTIVITY_MARGIN_SECONDS * 1000);
});

describe('exit-status marker and output cap', () => {
  const marker = (n: number) => Buffer.from(`${MARKER}${n}\n`, 'utf8');

  test('the marker is found and stripped when split byte by byte', () => {
    const c = new OutputCollector(1024);
    const all = Buffer.concat([Buffer.from('line 1\nline 2 ünïcode'), marker(42)]);
    for (const b of all) c.push(Buffer.from([b]));
    assert.equal(c.exitStatus, 42);
    assert.deepEqual(c.finish(), { output: 'line 1\nline 2 ünïcode', exitStatus: 42, truncated: false });
  });

  test('no marker: status unknown', () => {
    const c = new OutputCollector(1024);
    c.push(Buffer.from('partial'));
    assert.equal(c.exitStatus, null);
    assert.deepEqual(c.finish(), { output: 'partial', exitStatus: null, truncated: false });
  });

  test('output after the marker (late stderr, background processes) stays output', () => {
    const c = new OutputCollector(1024);
    c.push(Buffer.concat([Buffer.from('out\n'), marker(0), Buffer.from('late err\n')]));
    assert.equal(c.exitStatus, 0);
    assert.deepEqual(c.finish(), { output: 'out\nlate err\n', exitStatus: 0, truncated: false });
  });

  test('something that only looks like the marker is output; the real one after it still counts', () => {
    const c = new OutputCollector(1024);
    c.push(Buffer.concat([Buffer.from(`${MARKER}x\n`), Buffer.from('y'.repeat(100)), marker(4)]));
    assert.deepEqual(c.finish(), { output: `${MARKER}x\n${'y'.repeat(100)}`, exitStatus: 4, truncated: false });
    const c2 = new OutputCollector(1024);
    c2.push(Buffer.from(`${MARKER}12`)); // the stream ends without the echo's newline
    assert.deepEqual(c2.finish(), { output: '', exitStatus: 12, truncated: false });
  });

  test('CRLF around the marker is accepted; output bytes are not rewritten', () => {
    const c = new OutputCollector(1024);
    c.push(Buffer.from(`a\r\nb\r\n${MARKER}5\r\n`));
    assert.deepEqual(c.finish(), { output: 'a\r\nb\r\n', exitStatus: 5, truncated: false });
  });

  test('cap with the marker after it, and UTF-8 safe cuts', () => {
    const c = new OutputCollector(10);
    c.push(Buffer.from('x'.repeat(100)));
    c.push(marker(0));
    assert.equal(c.bytes, 100 + marker(0).length);
    assert.deepEqual(c.finish(), { output: 'x'.repeat(10), exitStatus: 0, truncated: true });

    const euro = Buffer.from('€€', 'utf8'); // 6 bytes
    assert.equal(utf8SafeLength(euro, 6), 6);
    assert.equal(utf8SafeLength(euro, 5), 3);
    assert.equal(utf8SafeLength(euro, 4), 3);
    assert.equal(utf8SafeLength(euro, 3), 3);
    assert.equal(utf8SafeLength(euro, 2), 0);
    const emoji = Buffer.from('a😀', 'utf8'); // 1 + 4 bytes
    assert.equal(utf8SafeLength(emoji, 4), 1);
    const c0 = new OutputCollector(0);
    c0.push(Buffer.from('abc'));
    assert.deepEqual(c0.finish(), { output: '', exitStatus: null, truncated: true });
  });

  test('the command runs in a subshell, so exit and trailing comments keep the marker', () => {
    assert.equal(withExitStatusMarker('date'), `(\ndate\n)\necho "${MARKER}$?"`);
    assert.equal(withExitStatusMarker('exit 3 # done'), `(\nexit 3 # done\n)\necho "${MARKER}$?"`);
  });

  test('attach_url parsing', () => {
    assert.deepEqual(parseAttachUrl('rendezvous://rendezvous.runtime.heroku.com:5000/abc123'), {
      host: 'rendezvous.runtime.heroku.com',
      port: 5000,
      secret: 'abc123',
    });
    assert.deepEqual(parseAttachUrl('rendezvous://127.0.0.1:4431/s3cr3t?x=1'), { host: '127.0.0.1', port: 4431, secret: 's3cr3t?x=1' });
    assert.equal(parseAttachUrl('rendezvous://example.com/abc').port, 5000);
    assert.throws(() => parseAttachUrl('https://example.com/abc'));
  });
});
