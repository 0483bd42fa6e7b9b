/**
 * PDF text as Markdown (unpdf, i.e. pdf.js), a `# Page N` heading per page,
 * run inside the converter process. At most WEB_MAX_PDF_PAGES pages are read.
 */
import { getDocumentProxy } from 'unpdf';
import { ConversionProblem } from './conversion-problem';

export interface PdfInput {
  body: Uint8Array;
  maxPages: number;
}

export async function pdfToMarkdown({ body, maxPages }: PdfInput): Promise<string> {
  let pdf;
  try {
    // pdf.js refuses a Buffer (IPC hands one over); the same bytes as a plain Uint8Array.
    pdf = await getDocumentProxy(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), {
      verbosity: 0,
      isEvalSupported: false,
      stopAtErrors: true,
    });
  } catch (err) {
    if ((err as Error).name === 'PasswordException') throw new ConversionProblem('is a password-protected PDF; its text cannot be read');
    throw new ConversionProblem(`is not a readable PDF: ${(err as Error).message}`);
  }
  try {
    const pages: string[] = [];
    const read = Math.min(pdf.numPages, maxPages);
    for (let number = 1; number <= read; number++) {
      const content = await (await pdf.getPage(number)).getTextContent();
      const text = content.items.map((item) => ('str' in item ? item.str + (item.hasEOL ? '\n' : '') : '')).join('');
      pages.push(`# Page ${number}\n\n${tidy(text) || '(no text on this page)'}`);
    }
    if (read < pdf.numPages) {
      pages.push(`[only the first ${read} of ${pdf.numPages} pages were read: this tool's limit (WEB_MAX_PDF_PAGES)]`);
    }
    return pages.join('\n\n');
  } catch (err) {
    if (err instanceof RangeError) throw err; // out of memory: the converter reports it
    throw new ConversionProblem(`is a PDF whose text could not be read: ${(err as Error).message}`);
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
