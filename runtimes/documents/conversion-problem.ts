/**
 * Content that cannot be converted, said for the model: the message follows
 * the document's URL ("<url> is not a readable PDF: ..."). Thrown inside the
 * converter process and sent back as text (runtimes/documents/converter.ts).
 */
export class ConversionProblem extends Error {
  override name = 'ConversionProblem';
}
