/**
 * pdf_to_markdown: fetches a PDF and returns its text (unpdf, i.e. pdf.js),
 * a `# Page N` heading per page.
 */
import { extractText, getDocumentProxy } from 'unpdf';
import { pdfToMarkdown } from '../catalog/web';
import type { AllowEntry } from '../common/host-list';
import { abortable, FetchError, type FetchedResource } from '../runtimes/web/safe-fetch';
import { webToolRunner } from './web-tool';

/** Declared types a PDF may come with; the body must still start like a PDF. */
const PDF_TYPES = new Set(['application/pdf', 'application/x-pdf', 'application/octet-stream', 'binary/octet-stream', '']);

export const pdfToMarkdownRunner = (allowHosts: AllowEntry[]) =>
  webToolRunner(
    pdfToMarkdown,
    {
      maxBytes: 10 * 1024 * 1024,
      accept: 'application/pdf',
      contentTypeProblem: (type) =>
        PDF_TYPES.has(type)
          ? undefined
          : `is ${type}, not a PDF (application/pdf)${type === 'text/html' ? '; html_to_markdown reads web pages' : ''}`,
      toMarkdown: (resource, signal) => abortable(pdfText(resource), signal),
    },
    allowHosts,
  );

async function pdfText({ url, body }: FetchedResource): Promise<string> {
  // PDF readers accept the header anywhere in the first 1024 bytes.
  if (!body.subarray(0, 1024).includes('%PDF-')) throw new FetchError(`${url} is not a PDF: it does not start with %PDF-`);
  let pdf;
  try {
    pdf = await getDocumentProxy(new Uint8Array(body), { verbosity: 0, isEvalSupported: false, stopAtErrors: true });
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'PasswordException') throw new FetchError(`${url} is a password-protected PDF; its text cannot be read`);
    throw new FetchError(`${url} is not a readable PDF: ${(err as Error).message}`);
  }
  try {
    const { text } = await extractText(pdf, { mergePages: false });
    return text.map((page, i) => `# Page ${i + 1}\n\n${tidy(page) || '(no text on this page)'}`).join('\n\n');
  } catch (err) {
    throw new FetchError(`${url} is a PDF whose text could not be read: ${(err as Error).message}`);
  } finally {
    await pdf.destroy();
  }
}

/** Runs of spaces to one, no spaces around line breaks, at most one blank line. */
function tidy(text: string): string {
  return text
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
