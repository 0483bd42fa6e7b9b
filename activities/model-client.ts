/**
 * The client of the OpenAI-compatible model API (INFERENCE_URL,
 * INFERENCE_KEY), shared by the model call and the worker's start-up check,
 * and the URL it is named by in errors and logs.
 */
import OpenAI from 'openai';
import type { WorkerConfig } from '../common/config';

/** Where the model API is and its key (empty: none). */
export type Inference = Pick<WorkerConfig['inference'], 'url' | 'key'>;

/**
 * A client for INFERENCE_URL/v1 that sends only what we configure: no
 * `Authorization` header at all without INFERENCE_KEY (a local Ollama needs
 * none), and none of the OPENAI_* variables of the worker's environment.
 */
export function modelClient(inference: Inference, options: { timeoutMs: number }): OpenAI {
  return new OpenAI({
    baseURL: `${inference.url}/v1`,
    // The package refuses to start without some key; the header it would make is removed below.
    apiKey: inference.key || 'none',
    adminAPIKey: null,
    organization: null,
    project: null,
    ...(inference.key ? {} : { defaultHeaders: { Authorization: null } }),
    maxRetries: 0, // retries are Temporal's: every attempt shows in the UI
    timeout: options.timeoutMs,
  });
}

/** `INFERENCE_URL` + `path`, as errors and logs name it: without any user name or password in it. */
export function modelApiUrl(inference: Inference, path: string): string {
  const url = new URL(`${inference.url}${path}`);
  url.username = '';
  url.password = '';
  return url.href;
}
