/**
 * html_to_markdown: fetches a page and returns it as Markdown (turndown, in a
 * converter process: runtimes/documents/). Plain-text and Markdown responses
 * are returned as they are.
 */
import { htmlToMarkdown } from '../catalog/web';
import type { WebToolLimits } from '../common/config';
import type { AllowEntry } from '../common/host-list';
import type { DocumentConverter } from '../runtimes/documents/converter';
import { decodeText } from '../runtimes/documents/decode-text';
import { webToolRunner } from './web-tool';

/** '' is a response without a Content-Type: read as HTML, as browsers mostly do. */
const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml', '']);
const TEXT_TYPES = new Set(['text/plain', 'text/markdown']);

export const htmlToMarkdownRunner = (allowHosts: AllowEntry[], limits: WebToolLimits, converter: DocumentConverter) =>
  webToolRunner(
    htmlToMarkdown,
    {
      maxBytes: limits.maxHtmlBytes,
      maxBytesSetting: 'WEB_MAX_HTML_BYTES',
      accept: 'text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5',
      contentTypeProblem: (type) =>
        HTML_TYPES.has(type) || TEXT_TYPES.has(type)
          ? undefined
          : `is ${type}, not an HTML page (text/html)${type === 'application/pdf' ? '; pdf_to_markdown reads PDFs' : ''}`,
      toMarkdown: async ({ url, mediaType, body, charset }, signal) =>
        TEXT_TYPES.has(mediaType)
          ? decodeText(body, charset)
          : converter.convert('html', { body, ...(charset ? { charset } : {}), maxDepth: limits.maxHtmlDepth }, url, signal),
    },
    allowHosts,
  );
