/**
 * The README's commands, run as written, so that the README and the service
 * cannot drift apart. Every ```sh block of README.md runs, in order, in one
 * bash session against the test stack, and what a block prints must be what
 * the README shows in the plain ``` block right after it (run ids, times,
 * token counts and dates aside; a line ending in `…` shows only its start).
 *
 * Nothing in the commands is rewritten. A `curl` function sends
 * `localhost:3000` to the stack's API; the commands run in a folder whose
 * `.data/api-key` holds the stack's key, where the README reads it; `npm` and
 * `docker` do nothing (the quick start and the Docker Compose section start
 * a service: the stack is that service), and neither do `heroku`, `git` and
 * `tcld` (the deploy sections talk to Heroku and Temporal Cloud, which this
 * machine cannot reach). The model double answers with the
 * assistant messages of the README's example, so the stream is the one shown.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { reply } from '../doubles/model-server';
import { useStack } from '../support/stack';
import { within } from '../support/wait';

const README = fs.readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
const stack = useStack();

interface Block {
  lang: string;
  text: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** Whether a heading lies between this block and the one before it. */
  afterHeading: boolean;
}

function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let open: Block | undefined;
  let headingSinceLast = false;
  markdown.split('\n').forEach((line, i) => {
    if (open) {
      if (line.startsWith('```')) {
        blocks.push(open);
        open = undefined;
        headingSinceLast = false;
      } else open.text += `${line}\n`;
      return;
    }
    if (line.startsWith('#')) headingSinceLast = true;
    if (line.startsWith('```')) open = { lang: line.slice(3).trim(), text: '', line: i + 1, afterHeading: headingSinceLast };
  });
  return blocks;
}

interface Command {
  script: string;
  line: number;
  /** What the README shows it prints: the plain block right after it, in the same section. */
  shows?: string;
}

function readmeCommands(): Command[] {
  const blocks = fencedBlocks(README);
  return blocks.flatMap((block, i) => {
    if (block.lang !== 'sh') return [];
    const next = blocks[i + 1];
    const shows = next && next.lang === '' && !next.afterHeading ? next.text : undefined;
    return [{ script: block.text, line: block.line, shows }];
  });
}

/** What differs from run to run, replaced alike in the README and in the output. */
function normalized(text: string): string {
  return text
    .replace(/\r\n/g, '\n')
    .replace(/chatcmpl-[0-9a-f]{24}/g, 'chatcmpl-<id>')
    .replace(/agent-run-[0-9a-f]{24}/g, 'agent-run-<id>')
    .replace(/"created":\d+/g, '"created":<time>')
    .replace(/"(prompt|completion|total)_tokens":\d+/g, '"$1_tokens":<n>')
    .replace(/^Date: .*$/gm, 'Date: <date>')
    .replace(/^X-RateLimit-Reset: \d+$/gm, 'X-RateLimit-Reset: <time>')
    .replace(/[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [A-Z]+ \d{4}/g, '<date>') // date(1)
    .replace(/\n+$/, '');
}

/** `actual` equals `shown`, where a shown line ending in `…` stands for any line that starts like it. */
function assertShows(actual: string, shown: string, where: string): void {
  const expected = normalized(shown).split('\n');
  const got = normalized(actual)
    .split('\n')
    .map((line, i) => {
      const pattern = expected[i];
      return pattern?.endsWith('…') && line.startsWith(pattern.slice(0, -1)) ? pattern : line;
    });
  assert.equal(got.join('\n'), expected.join('\n'), `the output of the commands at ${where} differs from what the README shows`);
}

/** The assistant messages of the README's example stream, to be the model double's answers. */
function exampleAnswers(example: string) {
  const completions = example
    .split('\n')
    .filter((line) => line.startsWith('data:{'))
    .map((line) => JSON.parse(line.slice('data:'.length)))
    .filter((event) => event.object === 'chat.completion')
    .map((event) => event.choices[0].message);
  assert.equal(completions.length, 2, 'the example shows a tool call and a final answer');
  return { first: completions[0], last: completions[1] };
}

function runBash(script: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-c', script], { cwd, env: { PATH: process.env.PATH, HOME: cwd }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return within(done, 'the README commands', 120_000).finally(() => child.kill('SIGKILL'));
}

test('every command of the README runs as written and prints what the README shows', { timeout: 180_000 }, async () => {
  const commands = readmeCommands();
  const example = commands.find((c) => c.shows?.startsWith('HTTP/1.1 200 OK'));
  assert.ok(example?.shows, 'the README shows the output of its example, headers first');
  assert.ok(commands.filter((c) => c.shows).length >= 5, 'the example and its follow-up commands show their output');

  const { first, last } = exampleAnswers(example.shows);
  stack.model.setHandler(({ body }) =>
    body.messages.at(-1)?.role === 'tool'
      ? reply.text(last.content)
      : reply.toolCalls(
          first.tool_calls.map((c: { id: string; function: { name: string; arguments: string } }) => ({
            id: c.id,
            name: c.function.name,
            arguments: c.function.arguments,
          })),
          first.content,
        ),
  );

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-readme-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, '.data'));
  fs.writeFileSync(path.join(dir, '.data', 'api-key'), `${stack.apiKey}\n`);
  const api = new URL(stack.apiUrl).host;
  const marker = (i: number) => `@@ README command ${i} @@`;
  const script = [
    'set -eo pipefail',
    `curl() { command curl "\${@//localhost:3000/${api}}"; }`,
    'npm() { :; }',
    'docker() { :; }',
    'heroku() { :; }',
    'git() { :; }',
    'tcld() { :; }',
    ...commands.flatMap((c, i) => [`printf '\\n%s\\n' '${marker(i)}'`, c.script]),
    `printf '\\n%s\\n' '${marker(commands.length)}'`,
  ].join('\n');
  const result = await runBash(script, dir);
  assert.equal(result.code, 0, `the README commands failed:\n${result.stderr}\n${result.stdout}`);
  assert.equal(result.stderr, '');

  commands.forEach((command, i) => {
    const start = result.stdout.indexOf(`${marker(i)}\n`) + marker(i).length + 1;
    const output = result.stdout.slice(start, result.stdout.indexOf(`\n${marker(i + 1)}\n`));
    if (command.shows !== undefined) assertShows(output, command.shows, `README.md:${command.line}`);
  });
});
