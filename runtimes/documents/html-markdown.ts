/**
 * HTML to Markdown (turndown), run inside the converter process. The page's
 * element nesting is measured first with parse5, which builds the same tree a
 * browser would and stops at WEB_MAX_HTML_DEPTH: turndown recurses once per
 * level, and the DOM parser it uses slows down with the square of the depth
 * (40,000 nested <div>s took 20 s to parse and then overflowed the stack).
 */
import { defaultTreeAdapter, parse, type DefaultTreeAdapterMap, type TreeAdapter } from 'parse5';
import TurndownService from 'turndown';
import { ConversionProblem } from './conversion-problem';
import { decodeText } from './decode-text';

/** Elements whose content is not text a reader sees. */
const DROPPED = new Set(['script', 'style', 'noscript', 'template', 'svg', 'canvas', 'iframe', 'object', 'embed']);

export interface HtmlInput {
  body: Uint8Array;
  /** The `charset` of the Content-Type, if any. */
  charset?: string;
  maxDepth: number;
}

export function htmlToMarkdown({ body, charset, maxDepth }: HtmlInput): string {
  const html = decodeText(body, charset);
  checkDepth(html, maxDepth);
  return convertHtml(html);
}

class TooDeep extends Error {}

/** Parses `html` as a browser would, stopping as soon as an element is nested deeper than `maxDepth`. */
function checkDepth(html: string, maxDepth: number): void {
  type Node = DefaultTreeAdapterMap['parentNode'] | DefaultTreeAdapterMap['childNode'];
  const depth = new WeakMap<Node, number>();
  const place = (parent: Node, child: Node) => {
    const level = (depth.get(parent) ?? 0) + 1;
    if (level > maxDepth) throw new TooDeep();
    depth.set(child, level);
  };
  const treeAdapter: TreeAdapter<DefaultTreeAdapterMap> = {
    ...defaultTreeAdapter,
    appendChild(parent, child) {
      place(parent, child);
      defaultTreeAdapter.appendChild(parent, child);
    },
    insertBefore(parent, child, reference) {
      place(parent, child);
      defaultTreeAdapter.insertBefore(parent, child, reference);
    },
  };
  try {
    parse(html, { treeAdapter });
  } catch (err) {
    if (!(err instanceof TooDeep)) throw err;
    throw new ConversionProblem(`nests its elements more than ${maxDepth} deep, this tool's limit (WEB_MAX_HTML_DEPTH); it was not converted`);
  }
}

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
