/** An SSE client for tests: raw bytes for framing checks, parsed frames (eventsource-parser) for the rest. */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface Frame {
  id?: string;
  event?: string;
  data: string;
}

export interface StreamResult {
  status: number;
  headers: Headers;
  /** The body exactly as received. */
  raw: string;
  frames: Frame[];
  comments: string[];
  /** The JSON bodies of `event:message` frames, in order. */
  messages: any[];
  /** Parsed JSON of the `error` body when the response is not a stream. */
  json?: any;
}

export interface ReadOptions {
  /** Disconnect after this many message frames (simulates a dropped client). */
  disconnectAfterMessages?: number;
  /** Called with each frame as soon as it is parsed (for timing its arrival). */
  onFrame?: (frame: Frame) => void;
}

export async function readStream(response: Response, opts: ReadOptions = {}): Promise<StreamResult> {
  const result: StreamResult = { status: response.status, headers: response.headers, raw: '', frames: [], comments: [], messages: [] };
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    result.raw = await response.text();
    try {
      result.json = JSON.parse(result.raw);
    } catch {
      // not JSON: the raw text is all there is
    }
    return result;
  }
  const parser = createParser({
    onEvent: (e: EventSourceMessage) => {
      const frame: Frame = { id: e.id, event: e.event, data: e.data };
      result.frames.push(frame);
      opts.onFrame?.(frame);
      if (e.event === 'message') result.messages.push(JSON.parse(e.data));
    },
    onComment: (c) => result.comments.push(c),
  });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const text = decoder.decode(value, { stream: true });
    result.raw += text;
    parser.feed(text);
    if (opts.disconnectAfterMessages !== undefined && result.messages.length >= opts.disconnectAfterMessages) {
      await reader.cancel();
      break;
    }
  }
  return result;
}

export interface Requester {
  apiUrl: string;
  apiKey: string;
}

export function post(stack: Requester, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack.apiUrl}/v1/agents/heroku`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${stack.apiKey}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export async function runAgent(stack: Requester, body: unknown, headers: Record<string, string> = {}, opts: ReadOptions = {}) {
  return readStream(await post(stack, body, headers), opts);
}

export async function getJson(stack: Requester, pathname: string, init: RequestInit = {}) {
  const res = await fetch(`${stack.apiUrl}${pathname}`, {
    ...init,
    headers: { Authorization: `Bearer ${stack.apiKey}`, ...(init.headers as Record<string, string>) },
  });
  return { status: res.status, body: await res.json() };
}

export async function resume(stack: Requester, runId: string, headers: Record<string, string> = {}, query = '') {
  const res = await fetch(`${stack.apiUrl}/v1/agents/runs/${runId}/stream${query}`, {
    headers: { Authorization: `Bearer ${stack.apiKey}`, ...headers },
  });
  return readStream(res);
}
