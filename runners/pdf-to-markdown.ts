/**
 * pdf_to_markdown: fetches a PDF and returns its text (unpdf, i.e. pdf.js, in
 * a converter process: runtimes/documents/), a `# Page N` heading per page.
 */
import { pdfToMarkdown } from '../catalog/web';
import type { WebToolLimits } from '../common/config';
import type { AllowEntry } from '../common/host-list';
import type { DocumentConverter } from '../runtimes/documents/converter';
import { FetchError } from '../runtimes/web/safe-fetch';
import { webToolRunner } from './web-tool';

/** Declared types a PDF may come with; the body must still start like a PDF. */
const PDF_TYPES = new Set(['application/pdf', 'application/x-pdf', 'application/octet-stream', 'binary/octet-stream', '']);

export const pdfToMarkdownRunner = (allowHosts: AllowEntry[], limits: WebToolLimits, converter: DocumentConverter) =>
  webToolRunner(
    pdfToMarkdown,
    {
      maxBytes: limits.maxPdfBytes,
      maxBytesSetting: 'WEB_MAX_PDF_BYTES',
      accept: 'application/pdf',
      contentTypeProblem: (type) =>
        PDF_TYPES.has(type)
          ? undefined
          : `is ${type}, not a PDF (application/pdf)${type === 'text/html' ? '; html_to_markdown reads web pages' : ''}`,
      toMarkdown: async ({ url, body }, signal) => {
        // PDF readers accept the header anywhere in the first 1024 bytes.
        if (!body.subarray(0, 1024).includes('%PDF-')) throw new FetchError(`${url} is not a PDF: it does not start with %PDF-`);
        return converter.convert('pdf', { body, maxPages: limits.maxPdfPages }, url, signal);
      },
    },
    allowHosts,
  );
