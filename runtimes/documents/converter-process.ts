/**
 * The converter process (started by ./converter.ts, never imported): converts
 * one document at a time, told what over IPC. Content that cannot be converted
 * is answered as { problem }; anything else (running out of memory, a bug)
 * rejects the task.
 */
import workerpool from 'workerpool';
import { ConversionProblem } from './conversion-problem';
import { htmlToMarkdown, type HtmlInput } from './html-markdown';
import { pdfToMarkdown, type PdfInput } from './pdf-markdown';

export type Conversion = { markdown: string } | { problem: string };

async function answer(convert: () => string | Promise<string>): Promise<Conversion> {
  try {
    return { markdown: await convert() };
  } catch (err) {
    if (err instanceof ConversionProblem) return { problem: err.message };
    throw err;
  }
}

export const CONVERSIONS = {
  html: (input: HtmlInput) => answer(() => htmlToMarkdown(input)),
  pdf: (input: PdfInput) => answer(() => pdfToMarkdown(input)),
};

workerpool.worker(CONVERSIONS);
