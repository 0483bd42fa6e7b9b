/**
 * Hostile pages and PDFs cannot stall the worker: documents are converted in
 * converter processes, with caps on nesting, pages and memory, and killed at
 * the tool's ttl. While they are refused or time out, a concurrent run's
 * side-effecting tool on the same (only) worker keeps heartbeating and
 * completes normally, instead of coming back "outcome unknown". The documents
 * come from a real HTTP server under this test; the commands run through the
 * Heroku double.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createDeflate, deflateSync } from 'node:zlib';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { post, readStream, runAgent, type StreamResult } from '../support/sse';
import { useStack } from '../support/stack';
import { until, within } from '../support/wait';

const TEST_TIMEOUT = { timeout: 180_000 };
const MEMORY_MB = 512;

/** A one-page PDF whose page content is `content`, Flate-compressed (hand-built: pdf-lib cannot make these). */
function pdfWithContent(compressed: Buffer): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 300] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    Buffer.concat([Buffer.from(`<< /Length ${compressed.length} /Filter /FlateDecode >>\nstream\n`), compressed, Buffer.from('\nendstream')]),
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  const parts = [Buffer.from('%PDF-1.7\n')];
  const offsets: number[] = [];
  let length = parts[0]!.length;
  objects.forEach((body, i) => {
    offsets.push(length);
    const object = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), Buffer.from(body), Buffer.from('\nendobj\n')]);
    parts.push(object);
    length += object.length;
  });
  const xref = offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  parts.push(
    Buffer.from(
      `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`,
    ),
  );
  return Buffer.concat(parts);
}

/** `bytes` zeros, deflated in chunks (never all in memory): a stream that inflates to far more than it weighs. */
async function deflatedZeros(bytes: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => out.push(chunk));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  const chunk = Buffer.alloc(64 * 1024 * 1024);
  for (let written = 0; written < bytes; written += chunk.length) {
    if (!deflate.write(chunk)) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await done;
  return Buffer.concat(out);
}

async function threePagePdf(): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const text of ['one', 'two', 'three']) doc.addPage([300, 200]).drawText(`page ${text}`, { x: 20, y: 100, size: 12, font });
  return Buffer.from(await doc.save());
}

let server: http.Server;
let base = '';
const fetched: string[] = [];

before(async () => {
  const documents: Record<string, [string, Buffer]> = {
    // 40,000 unclosed <div>s, about 200 KiB: took 17.8 s to convert on the worker's thread, then crashed the converter.
    '/deep.html': ['text/html', Buffer.from(`<html><body>${'<div>'.repeat(40_000)}deep</body></html>`)],
    // Shallow and valid, but about 4 MiB of paragraphs: seconds of turndown on any machine.
    '/long.html': ['text/html', Buffer.from(`<html><body>${'<p>Some <b>bold</b> and <a href="/x">a link</a>.</p>'.repeat(80_000)}</body></html>`)],
    '/ok.html': ['text/html', Buffer.from('<html><head><title>Fine</title></head><body><p>Still <em>working</em>.</p></body></html>')],
    // A few hundred KiB whose one page has ten million text operators: tens of seconds of pdf.js.
    '/slow.pdf': [
      'application/pdf',
      pdfWithContent(
        deflateSync(Buffer.concat([Buffer.from('BT /F1 12 Tf 30 250 Td '), Buffer.alloc(70_000_000, '(a) Tj '), Buffer.from(' ET')]), { level: 9 }),
      ),
    ],
    // About 1 MiB that inflates to 1 GiB when pdf.js reads the page.
    '/bomb.pdf': ['application/pdf', pdfWithContent(await deflatedZeros(1024 * 1024 * 1024))],
    '/three.pdf': ['application/pdf', await threePagePdf()],
  };
  server = http.createServer((req, res) => {
    fetched.push(req.url ?? '');
    const document = documents[req.url ?? ''];
    if (document) res.writeHead(200, { 'content-type': document[0] }).end(document[1]);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server?.closeAllConnections();
  server?.close();
});

const stack = useStack({
  workerEnv: { FETCH_ALLOW_HOSTS: '127.0.0.1', CONVERTER_MAX_MEMORY_MB: String(MEMORY_MB), WEB_MAX_PDF_PAGES: '2' },
});

const webTool = (name: string, ttl: number) => ({ type: 'heroku_tool', name, runtime_params: { ttl_seconds: ttl, max_calls: 5 } });

/** The text and isError of the one tool result of a web tool run. */
function webResult(run: StreamResult): { text: string; isError: boolean } {
  const tool = run.messages.find((m) => m.object === 'tool.completion');
  assert.ok(tool, run.raw);
  const content: string = tool.choices[0].message.content;
  const result = JSON.parse(content.slice(content.indexOf(': ') + 2));
  return { text: result.content[0].text, isError: result.isError };
}

/** Runs `tool` on `path` with `ttl`; resolves with the result and how long the run took. */
async function convert(tool: string, path: string, ttl: number) {
  const started = Date.now();
  const run = await runAgent(stack, {
    model: 'm',
    messages: [{ role: 'user', content: `CALL ${tool} ${JSON.stringify({ url: `${base}${path}` })}` }],
    tools: [webTool(tool, ttl)],
  });
  assert.equal(run.status, 200, run.raw);
  return { ...webResult(run), ms: Date.now() - started };
}

/** A run whose dyno_run_command (side-effecting: never retried) takes `seconds`, started now and read in the background. */
async function startSideEffect(seconds: number) {
  const creates = stack.heroku.creates.length;
  const res = await post(stack, {
    model: 'm',
    messages: [{ role: 'user', content: 'CALL dyno_run_command {}' }],
    tools: [
      {
        type: 'heroku_tool',
        name: 'dyno_run_command',
        runtime_params: {
          target_app_name: 'my-app',
          ttl_seconds: 120,
          tool_params: { cmd: `sleep ${seconds}; echo side effect done`, description: 'a slow step' },
        },
      },
    ],
  });
  const finished = readStream(res);
  await until(() => stack.heroku.creates.length > creates, 'the dyno to be created');
  return { finished };
}

const sideEffectDone = "Tool 'dyno_run_command' returned result: side effect done";

describe('a hostile page or PDF ends as a readable tool error; the other run on the worker is unharmed', () => {
  test('40,000 nested <div>s are refused by WEB_MAX_HTML_DEPTH within the ttl', TEST_TIMEOUT, async () => {
    const other = await startSideEffect(8);
    const deep = await convert('html_to_markdown', '/deep.html', 30);
    assert.deepEqual(
      { text: deep.text, isError: deep.isError },
      {
        text: `${base}/deep.html nests its elements more than 512 deep, this tool's limit (WEB_MAX_HTML_DEPTH); it was not converted`,
        isError: true,
      },
    );
    assert.ok(deep.ms < 30_000, `took ${deep.ms} ms, longer than its ttl`);

    const run = await within(other.finished, 'the other run to end', 60_000);
    const results = run.messages.filter((m) => m.object === 'tool.completion').map((m) => m.choices[0].message.content);
    assert.deepEqual(results, [sideEffectDone]);
  });

  test('a page that converts for longer than its ttl is stopped at the ttl, and the next page converts', TEST_TIMEOUT, async () => {
    await convert('html_to_markdown', '/ok.html', 60); // a converter process is running
    const long = await convert('html_to_markdown', '/long.html', 1);
    assert.deepEqual(
      { text: long.text, isError: long.isError },
      { text: `html_to_markdown timed out after 1s (its ttl_seconds) on ${base}/long.html`, isError: true },
    );
    assert.ok(long.ms < 10_000, `took ${long.ms} ms`);
    const ok = await convert('html_to_markdown', '/ok.html', 60);
    assert.deepEqual({ text: ok.text, isError: ok.isError }, { text: '# Fine\n\nStill _working_.', isError: false });
  });

  test('a PDF that takes minutes to read is stopped at its ttl; the side-effecting run completes', TEST_TIMEOUT, async () => {
    const other = await startSideEffect(6);
    const slow = await convert('pdf_to_markdown', '/slow.pdf', 3);
    assert.deepEqual(
      { text: slow.text, isError: slow.isError },
      { text: `pdf_to_markdown timed out after 3s (its ttl_seconds) on ${base}/slow.pdf`, isError: true },
    );
    assert.ok(slow.ms < 15_000, `took ${slow.ms} ms`);

    const run = await within(other.finished, 'the other run to end', 60_000);
    const results = run.messages.filter((m) => m.object === 'tool.completion').map((m) => m.choices[0].message.content);
    assert.deepEqual(results, [sideEffectDone]);
  });

  test('a PDF that inflates past CONVERTER_MAX_MEMORY_MB ends its converter, not the worker', TEST_TIMEOUT, async () => {
    const bomb = await convert('pdf_to_markdown', '/bomb.pdf', 60);
    assert.equal(bomb.isError, true);
    assert.match(
      bomb.text,
      new RegExp(`^${base}/bomb\\.pdf could not be converted: .*more than ${MEMORY_MB} MiB, the converter's limit \\(CONVERTER_MAX_MEMORY_MB\\)$`),
    );
    const pages = await convert('pdf_to_markdown', '/three.pdf', 60);
    assert.deepEqual(
      { text: pages.text, isError: pages.isError },
      {
        text: "# Page 1\n\npage one\n\n# Page 2\n\npage two\n\n[only the first 2 of 3 pages were read: this tool's limit (WEB_MAX_PDF_PAGES)]",
        isError: false,
      },
    );
  });

  test('the converters get none of the worker’s secrets', () => {
    const converters = convertersOf(stack.worker.child!.pid!);
    assert.ok(converters.length > 0, 'expected a converter process of the worker');
    for (const pid of converters) {
      const environment = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      for (const secret of stack.secrets) assert.equal(environment.includes(secret), false, 'a secret reached a converter');
      assert.doesNotMatch(environment, /HEROKU_API_KEY|INFERENCE_KEY/);
    }
  });
});

/** The converter processes of the worker `pid` (prlimit execs node, so they are its children). */
function convertersOf(pid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((child) => {
      try {
        const parent = /^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${child}/status`, 'utf8'))?.[1];
        return Number(parent) === pid && fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('converter-process');
      } catch {
        return false; // ended meanwhile
      }
    });
}
