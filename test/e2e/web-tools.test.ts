/**
 * html_to_markdown and pdf_to_markdown end to end: POST /v1/agents/heroku with
 * the scripted model, the worker fetching from a real HTTP server under this
 * test (real HTML, real PDFs made with pdf-lib). The worker first allows
 * 127.0.0.1 through FETCH_ALLOW_HOSTS; started again without an allow list, it
 * must refuse every private or loopback target before any connection is made. (No test
 * here may send traffic beyond loopback: private targets are only ever refused.)
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { getJson, post, readStream, runAgent } from '../support/sse';
import { useStack, type Stack } from '../support/stack';
import { until, within } from '../support/wait';

const PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Durable Agents</title>
<style>h1 { color: red }</style><script>document.write('from a script')</script></head>
<body>
<noscript>Please enable JavaScript</noscript>
<svg width="10" height="10"><title>logo</title><text>drawn text</text></svg>
<h1>Durable agents</h1>
<p>Runs survive <strong>crashes</strong> and <em>restarts</em>. See <a href="https://temporal.io/">Temporal</a>.</p>
<h2>Steps</h2>
<ul><li>Call the model</li><li>Run the tools</li></ul>
<pre><code class="language-sh">npm test</code></pre>
<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline pixel">
</body></html>`;

const PAGE_MARKDOWN = `# Durable agents

Runs survive **crashes** and _restarts_. See [Temporal](https://temporal.io/).

## Steps

-   Call the model
-   Run the tools

\`\`\`sh
npm test
\`\`\``;

/** Declares its charset only in a <meta>, encoded to match; has no <h1>, so the title heads it. */
const LATIN1_PAGE = Buffer.from(
  '<html><head><meta charset="windows-1252"><title>Caf\xe9 menu</title></head><body><h2>Drinks</h2><p>Cr\xe8me br\xfbl\xe9e \x80 4, \x93house\x94 style</p></body></html>',
  'latin1',
);

const LONG_PAGE = `<html><body>${Array.from({ length: 2000 }, (_, i) => `<p>Paragraph ${i}: ${'lorem ipsum '.repeat(4)}</p>`).join('')}</body></html>`;

interface LocalServer {
  url: string;
  port: number;
  /** Paths requested, in order. */
  requests: string[];
  /** Requests to /slow (which never answers) so far, and how many of their connections the client closed. */
  slow: { started: number; closed: number };
  close(): Promise<void>;
}

async function makePdf(pages: string[][]): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const lines of pages) {
    const page = doc.addPage([400, 300]);
    lines.forEach((line, i) => page.drawText(line, { x: 30, y: 250 - i * 20, size: 12, font }));
  }
  return Buffer.from(await doc.save());
}

async function startLocalServer(): Promise<LocalServer> {
  const pdf = await makePdf([['Quarterly report', 'Revenue grew 12%'], ['Outlook is stable'], []]);
  const requests: string[] = [];
  const slow = { started: 0, closed: 0 };
  let base = '';
  const send = (res: http.ServerResponse, type: string, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}) => {
    res.writeHead(200, { 'content-type': type, ...headers });
    res.end(body);
  };
  const redirect = (res: http.ServerResponse, status: number, location: string) => {
    res.writeHead(status, { location });
    res.end();
  };
  const server = http.createServer((req, res) => {
    requests.push(req.url!);
    switch (req.url ?? '') {
      case '/page.html':
        return send(res, 'text/html; charset=utf-8', PAGE);
      case '/page-gzip.html':
        return send(res, 'text/html; charset=utf-8', gzipSync(PAGE), { 'content-encoding': 'gzip' });
      case '/latin1.html':
        return send(res, 'text/html', LATIN1_PAGE);
      case '/long.html':
        return send(res, 'text/html', LONG_PAGE);
      case '/notes.txt':
        return send(res, 'text/plain; charset=utf-8', 'plain *text*, kept as it is\n');
      case '/image.png':
        return send(res, 'image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      case '/doc.pdf':
        return send(res, 'application/pdf', pdf);
      case '/download':
        return send(res, 'application/octet-stream', pdf);
      case '/fake.pdf':
        return send(res, 'application/pdf', '<html><body>not a pdf</body></html>');
      case '/broken.pdf':
        return send(res, 'application/pdf', '%PDF-1.7\nthis is not really a PDF\n%%EOF\n');
      case '/big.html': {
        // 6 MiB in 64 KiB chunks, no Content-Length: the cap must count while reading.
        res.writeHead(200, { 'content-type': 'text/html' });
        const chunk = Buffer.alloc(64 * 1024, 'a');
        let sent = 0;
        const pump = () => {
          while (sent < 96 && res.write(chunk)) sent++;
          if (sent >= 96) res.end();
          else res.once('drain', pump);
        };
        res.on('error', () => {});
        return pump();
      }
      case '/big.pdf':
        // Declares 11 MiB, sends a little, then waits: must be refused from the header.
        res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': String(11 * 1024 * 1024) });
        return void res.write('%PDF-1.7\n');
      case '/slow':
        slow.started++;
        res.on('close', () => slow.closed++);
        return; // never answers
      case '/old':
        return redirect(res, 301, '/page.html');
      case '/loop':
        return redirect(res, 302, '/loop');
      case '/to-private':
        return redirect(res, 302, 'http://10.0.0.1/admin');
      case '/to-metadata':
        return redirect(res, 307, 'http://169.254.169.254/latest/meta-data');
      case '/to-localhost':
        return redirect(res, 302, `http://localhost:${new URL(base).port}/secret`);
      case '/to-file':
        return redirect(res, 302, 'file:///etc/passwd');
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('no such page');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    url: base,
    port,
    requests,
    slow,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

interface ToolOutcome {
  name: string;
  text: string;
  isError: boolean;
}

const tools = (runtime: Record<string, unknown> = {}) =>
  ['html_to_markdown', 'pdf_to_markdown'].map((name) => ({ type: 'heroku_tool', name, runtime_params: { max_calls: 20, ...runtime } }));

/** Runs one request whose user message holds `calls` (one `CALL tool {"url":…}` line each); returns the tool results. */
async function callTools(stack: Stack, calls: [tool: string, url: string][], runtime: Record<string, unknown> = {}): Promise<ToolOutcome[]> {
  const content = calls.map(([tool, url]) => `CALL ${tool} ${JSON.stringify({ url })}`).join('\n');
  const res = await runAgent(stack, { model: 'claude-4-sonnet', messages: [{ role: 'user', content }], tools: tools(runtime) });
  assert.equal(res.status, 200, res.raw);
  const outcomes = res.messages
    .filter((m) => m.object === 'tool.completion')
    .map((m) => {
      const { name, content: body } = m.choices[0].message;
      const prefix = `Tool '${name}' returned result: `;
      assert.ok(body.startsWith(prefix), body);
      const result = JSON.parse(body.slice(prefix.length));
      assert.deepEqual(Object.keys(result), ['content', 'isError']);
      assert.equal(result.content.length, 1);
      assert.equal(result.content[0].type, 'text');
      return { name, text: result.content[0].text as string, isError: result.isError as boolean };
    });
  assert.equal(outcomes.length, calls.length, res.raw);
  return outcomes;
}

async function callTool(stack: Stack, tool: string, url: string, runtime: Record<string, unknown> = {}): Promise<ToolOutcome> {
  return (await callTools(stack, [[tool, url]], runtime))[0]!;
}

const refusal = (url: string, host: string, what: string, via = '') =>
  `refused to fetch ${url}${via}: host ${host} is ${what}; only public addresses may be fetched (FETCH_ALLOW_HOSTS lists exceptions)`;

let server: LocalServer;
before(async () => {
  server = await startLocalServer();
});
after(async () => {
  await server?.close();
});

const stack = useStack({ workerEnv: { FETCH_ALLOW_HOSTS: '127.0.0.1' } });

describe('with 127.0.0.1 on FETCH_ALLOW_HOSTS', () => {
  test('html_to_markdown returns the page as Markdown in an MCP CallToolResult', async () => {
    const content = `CALL html_to_markdown {"url":"${server.url}/page.html"}`;
    const res = await runAgent(stack, { model: 'claude-4-sonnet', messages: [{ role: 'user', content }], tools: tools() });
    const tool = res.messages.find((m) => m.object === 'tool.completion');
    assert.equal(
      tool.choices[0].message.content,
      `Tool 'html_to_markdown' returned result: ${JSON.stringify({ content: [{ type: 'text', text: PAGE_MARKDOWN }], isError: false })}`,
    );
    // What the model was offered.
    const offered = stack.model.requests.find((r) => r.body.messages[0].content === content)!.body.tools;
    assert.deepEqual(offered[0].function, {
      name: 'html_to_markdown',
      description: 'Fetches a web page and returns its content as Markdown.',
      parameters: { type: 'object', properties: { url: { type: 'string', description: 'The http or https URL of the page' } }, required: ['url'] },
    });
    assert.equal(offered[1].function.name, 'pdf_to_markdown');
  });

  test('gzip-encoded pages, <meta> charsets, <title> headings and plain text', async () => {
    const [gzip, latin1, text] = await callTools(stack, [
      ['html_to_markdown', `${server.url}/page-gzip.html`],
      ['html_to_markdown', `${server.url}/latin1.html`],
      ['html_to_markdown', `${server.url}/notes.txt`],
    ]);
    assert.deepEqual(gzip, { name: 'html_to_markdown', text: PAGE_MARKDOWN, isError: false });
    assert.deepEqual(latin1, { name: 'html_to_markdown', text: '# Café menu\n\n## Drinks\n\nCrème brûlée € 4, “house” style', isError: false });
    assert.deepEqual(text, { name: 'html_to_markdown', text: 'plain *text*, kept as it is\n', isError: false });
  });

  test('a redirect is followed', async () => {
    assert.deepEqual(await callTool(stack, 'html_to_markdown', `${server.url}/old`), {
      name: 'html_to_markdown',
      text: PAGE_MARKDOWN,
      isError: false,
    });
  });

  test('long output is cut at 64 KiB characters with a note', async () => {
    const { text, isError } = await callTool(stack, 'html_to_markdown', `${server.url}/long.html`);
    assert.equal(isError, false);
    assert.ok(text.startsWith('Paragraph 0: lorem ipsum'), text.slice(0, 100));
    assert.match(text, /\n\n\[truncated: the Markdown is \d+ characters; only the first 65536 are shown\]$/);
    assert.equal(text.indexOf('\n\n[truncated'), 65536);
  });

  test('pdf_to_markdown returns the text with a # Page N heading per page', async () => {
    const expected = '# Page 1\n\nQuarterly report\nRevenue grew 12%\n\n# Page 2\n\nOutlook is stable\n\n# Page 3\n\n(no text on this page)';
    const [pdf, octet] = await callTools(stack, [
      ['pdf_to_markdown', `${server.url}/doc.pdf`],
      ['pdf_to_markdown', `${server.url}/download`],
    ]);
    assert.deepEqual(pdf, { name: 'pdf_to_markdown', text: expected, isError: false });
    assert.deepEqual(octet, { name: 'pdf_to_markdown', text: expected, isError: false }, 'an octet-stream that is a PDF is read');
  });

  test('failures the model reads: HTTP errors, wrong content types, not a PDF, too large', async () => {
    const u = server.url;
    const outcomes = await callTools(stack, [
      ['html_to_markdown', `${u}/missing`],
      ['html_to_markdown', `${u}/image.png`],
      ['html_to_markdown', `${u}/doc.pdf`],
      ['pdf_to_markdown', `${u}/page.html`],
      ['pdf_to_markdown', `${u}/fake.pdf`],
      ['html_to_markdown', `${u}/big.html`],
      ['pdf_to_markdown', `${u}/big.pdf`],
      ['html_to_markdown', `${u}/loop`],
      ['html_to_markdown', 'not a url'],
    ]);
    assert.deepEqual(
      outcomes.map((o) => [o.isError, o.text]),
      [
        [true, `${u}/missing answered HTTP 404 Not Found`],
        [true, `${u}/image.png is image/png, not an HTML page (text/html)`],
        [true, `${u}/doc.pdf is application/pdf, not an HTML page (text/html); pdf_to_markdown reads PDFs`],
        [true, `${u}/page.html is text/html, not a PDF (application/pdf); html_to_markdown reads web pages`],
        [true, `${u}/fake.pdf is not a PDF: it does not start with %PDF-`],
        [true, `${u}/big.html is larger than 5 MiB, this tool's limit (WEB_MAX_HTML_BYTES); stopped reading`],
        [true, `${u}/big.pdf is larger than 10 MiB, this tool's limit (WEB_MAX_PDF_BYTES); stopped reading`],
        [true, `${u}/loop redirected more than 5 times; stopped at ${u}/loop`],
        [true, `'not a url' is not a valid URL`],
      ],
    );
    assert.equal(server.requests.filter((p) => p === '/loop').length, 6);
  });

  test('an unparsable PDF is a readable error', async () => {
    const { text, isError } = await callTool(stack, 'pdf_to_markdown', `${server.url}/broken.pdf`);
    assert.equal(isError, true);
    assert.match(text, new RegExp(`^${server.url}/broken\\.pdf is not a readable PDF: .+`));
  });

  test('a server slower than ttl_seconds times out after ttl_seconds, and the connection is closed', async () => {
    const closed = server.slow.closed;
    const started = Date.now();
    const { text, isError } = await callTool(stack, 'html_to_markdown', `${server.url}/slow`, { ttl_seconds: 1 });
    const elapsed = Date.now() - started;
    assert.deepEqual({ text, isError }, { text: `html_to_markdown timed out after 1s (its ttl_seconds) on ${server.url}/slow`, isError: true });
    // Far below the tool activity's own limit (ttl + 30 s): the fetch's deadline ended it.
    assert.ok(elapsed < 15_000, `took ${elapsed} ms`);
    await until(() => server.slow.closed > closed, 'the slow connection to close', 10_000);
  });

  test('cancelling the run stops the fetch in flight', async () => {
    const { started: slowStarted, closed } = server.slow;
    const content = `CALL html_to_markdown {"url":"${server.url}/slow"}`;
    const res = await post(stack, { model: 'claude-4-sonnet', messages: [{ role: 'user', content }], tools: tools({ ttl_seconds: 120 }) });
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    await until(() => server.slow.started > slowStarted, 'the fetch to reach the server', 10_000);
    const started = Date.now();
    assert.equal((await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' })).status, 202);
    const stream = await within(reading, 'the stream to end after the cancel', 30_000);
    assert.ok(Date.now() - started < 20_000, `stream ended ${Date.now() - started} ms after cancel`);
    assert.deepEqual(
      stream.frames.map((f) => f.event),
      ['message', 'error', 'done'],
    );
    assert.equal(JSON.parse(stream.frames[1]!.data).error.type, 'cancelled');
    await until(() => server.slow.closed > closed, 'the slow connection to close', 10_000);
  });

  test('redirects are checked at every hop: private, link-local, other hosts and other schemes are refused', async () => {
    const u = server.url;
    const before = server.requests.length;
    const outcomes = await callTools(stack, [
      ['html_to_markdown', `${u}/to-private`],
      ['html_to_markdown', `${u}/to-metadata`],
      ['pdf_to_markdown', `${u}/to-localhost`],
      ['html_to_markdown', `${u}/to-file`],
    ]);
    assert.deepEqual(outcomes[0], {
      name: 'html_to_markdown',
      text: refusal('http://10.0.0.1/admin', '10.0.0.1', 'a private address', ` (redirected from ${u}/to-private)`),
      isError: true,
    });
    assert.deepEqual(outcomes[1], {
      name: 'html_to_markdown',
      text: refusal('http://169.254.169.254/latest/meta-data', '169.254.169.254', 'a link-local address', ` (redirected from ${u}/to-metadata)`),
      isError: true,
    });
    // localhost is not 127.0.0.1 on the allow list: hostnames match exactly.
    assert.equal(outcomes[2]!.isError, true);
    assert.match(
      outcomes[2]!.text,
      new RegExp(
        `^refused to fetch http://localhost:${server.port}/secret \\(redirected from ${u}/to-localhost\\): host localhost resolves to (127\\.0\\.0\\.1|::1), which is a loopback address;`,
      ),
    );
    assert.deepEqual(outcomes[3], {
      name: 'html_to_markdown',
      text: `refused to fetch file:///etc/passwd (redirected from ${u}/to-file): only http and https URLs may be fetched`,
      isError: true,
    });
    // One request each and no further hop; the four calls of one reply run at once, so in any order.
    assert.deepEqual(server.requests.slice(before).sort(), ['/to-file', '/to-localhost', '/to-metadata', '/to-private']);
  });

  test('tool_params are refused: these tools take none', async () => {
    const res = await runAgent(stack, {
      model: 'claude-4-sonnet',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'heroku_tool', name: 'pdf_to_markdown', runtime_params: { tool_params: { max_pages: 3 } } }],
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.message, 'tools[0].runtime_params.tool_params.max_pages is not a parameter of this tool: it takes no tool_params');
  });
});

describe('without FETCH_ALLOW_HOSTS', () => {
  before(async () => {
    // The same stack with the worker started again, its allow list empty.
    await stack.worker.kill('SIGTERM');
    await stack.worker.start({ FETCH_ALLOW_HOSTS: '' });
  });

  test('private, loopback and link-local targets are refused before any connection, however written', async () => {
    const p = server.port;
    const before = server.requests.length;
    const outcomes = await callTools(stack, [
      ['html_to_markdown', `http://127.0.0.1:${p}/page.html`],
      ['pdf_to_markdown', `http://localhost:${p}/doc.pdf`],
      ['html_to_markdown', 'http://[::1]/'],
      ['html_to_markdown', 'http://169.254.169.254/latest/meta-data'],
      ['html_to_markdown', 'http://10.0.0.1/'],
      ['html_to_markdown', `http://2130706433:${p}/page.html`],
      ['html_to_markdown', `http://0x7f000001:${p}/page.html`],
      ['html_to_markdown', `http://0x7f.1:${p}/page.html`],
      ['html_to_markdown', `http://[::ffff:127.0.0.1]:${p}/page.html`],
      ['pdf_to_markdown', 'https://192.168.0.1/report.pdf'],
      ['html_to_markdown', 'http://100.64.0.1/'],
      ['html_to_markdown', 'http://[fd00::1]/'],
      ['html_to_markdown', 'http://0.0.0.0/'],
      ['html_to_markdown', 'file:///etc/passwd'],
    ]);
    const texts = outcomes.map((o) => o.text);
    assert.ok(
      outcomes.every((o) => o.isError),
      JSON.stringify(outcomes, null, 1),
    );
    assert.equal(texts[0], refusal(`http://127.0.0.1:${p}/page.html`, '127.0.0.1', 'a loopback address'));
    assert.match(
      texts[1]!,
      new RegExp(`^refused to fetch http://localhost:${p}/doc\\.pdf: host localhost resolves to (127\\.0\\.0\\.1|::1), which is a loopback address;`),
    );
    assert.equal(texts[2], refusal('http://[::1]/', '[::1]', 'a loopback address'));
    assert.equal(texts[3], refusal('http://169.254.169.254/latest/meta-data', '169.254.169.254', 'a link-local address'));
    assert.equal(texts[4], refusal('http://10.0.0.1/', '10.0.0.1', 'a private address'));
    for (const i of [5, 6, 7]) assert.equal(texts[i], refusal(`http://127.0.0.1:${p}/page.html`, '127.0.0.1', 'a loopback address'));
    assert.equal(texts[8], refusal(`http://[::ffff:7f00:1]:${p}/page.html`, '[::ffff:7f00:1]', 'a loopback address'));
    assert.equal(texts[9], refusal('https://192.168.0.1/report.pdf', '192.168.0.1', 'a private address'));
    assert.equal(texts[10], refusal('http://100.64.0.1/', '100.64.0.1', 'a carrier-grade NAT (shared) address'));
    assert.equal(texts[11], refusal('http://[fd00::1]/', '[fd00::1]', 'a unique-local address'));
    assert.equal(texts[12], refusal('http://0.0.0.0/', '0.0.0.0', 'an unspecified address'));
    assert.equal(texts[13], 'refused to fetch file:///etc/passwd: only http and https URLs may be fetched');
    assert.deepEqual(server.requests.slice(before), [], 'no request reached the local server');
  });
});
