/** Bytes of a text response to a string, as browsers decode them. */
import iconv from 'iconv-lite';

/** Decoded by the charset the server declares, else a <meta> charset near the top, else UTF-8. */
export function decodeText(body: Uint8Array, charset: string | undefined): string {
  const declared = charset ?? /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(Buffer.from(body.subarray(0, 1024)).toString('latin1'))?.[1];
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(declared ?? 'utf-8'); // WHATWG labels: latin1 and ascii mean windows-1252, as in browsers
  } catch {
    decoder = new TextDecoder('utf-8'); // unknown charset label
  }
  // Node 20's TextDecoder reads windows-1252 as ISO-8859-1, losing € and smart quotes (nodejs/node#56542).
  return decoder.encoding === 'windows-1252' ? iconv.decode(Buffer.from(body), 'windows-1252') : decoder.decode(body);
}
