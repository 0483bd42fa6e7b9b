/**
 * html_to_markdown: fetches a page and returns it as Markdown (turndown).
 * Plain-text and Markdown responses are returned as they are.
 */
import iconv from 'iconv-lite';
import TurndownService from 'turndown';
import { htmlToMarkdown } from '../catalog/web';
import type { AllowEntry } from '../common/host-list';
import type { FetchedResource } from '../runtimes/web/safe-fetch';
import { webToolRunner } from './web-tool';

/** '' is a response without a Content-Type: read as HTML, as browsers mostly do. */
const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml', '']);
const TEXT_TYPES = new Set(['text/plain', 'text/markdown']);

/** Elements whose content is not text a reader sees. */
const DROPPED = new Set(['script', 'style', 'noscript', 'template', 'svg', 'canvas', 'iframe', 'object', 'embed']);

export const htmlToMarkdownRunner = (allowHosts: AllowEntry[]) =>
  webToolRunner(
    htmlToMarkdown,
    {
      maxBytes: 5 * 1024 * 1024,
      accept: 'text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5',
      contentTypeProblem: (type) =>
        HTML_TYPES.has(type) || TEXT_TYPES.has(type)
          ? undefined
          : `is ${type}, not an HTML page (text/html)${type === 'application/pdf' ? '; pdf_to_markdown reads PDFs' : ''}`,
      toMarkdown: (resource) => {
        const text = decodeText(resource);
        return Promise.resolve(TEXT_TYPES.has(resource.mediaType) ? text : convertHtml(text));
      },
    },
    allowHosts,
  );

/** The page as Markdown, headed by its <title> unless it opens with its own level-1 heading. */
function convertHtml(html: string): string {
  let title = '';
  const service = new TurndownService({ headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-' })
    .remove((node) => DROPPED.has(node.nodeName.toLowerCase()))
    .addRule('title', {
      filter: (node) => node.nodeName === 'TITLE', // HTML's; an <svg>'s <title> is 'title'
      replacement: (_content, node) => {
        title ||= (node.textContent ?? '').replace(/\s+/g, ' ').trim();
        return '';
      },
    })
    // Inline images (data: URLs) would fill the output with base64.
    .addRule('inlineImage', {
      filter: (node) => node.nodeName === 'IMG' && /^\s*data:/i.test(node.getAttribute('src') ?? ''),
      replacement: () => '',
    });
  const body = service.turndown(html).trim();
  const heading = title && !body.startsWith('# ') ? `# ${service.escape(title)}` : '';
  return [heading, body].filter(Boolean).join('\n\n') || '(the page has no text)';
}

/** Decoded by the charset the server declares, else a <meta> charset near the top, else UTF-8. */
function decodeText({ body, charset }: FetchedResource): string {
  const declared = charset ?? /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(body.subarray(0, 1024).toString('latin1'))?.[1];
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(declared ?? 'utf-8'); // WHATWG labels: latin1 and ascii mean windows-1252, as in browsers
  } catch {
    decoder = new TextDecoder('utf-8'); // unknown charset label
  }
  // Node 20's TextDecoder reads windows-1252 as ISO-8859-1, losing € and smart quotes (nodejs/node#56542).
  return decoder.encoding === 'windows-1252' ? iconv.decode(body, 'windows-1252') : decoder.decode(body);
}
