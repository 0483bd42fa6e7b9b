/**
 * Which documented route a request path belongs to, as /openapi.json writes
 * it (`/v1/agents/runs/{id}`): the label of its metrics and the name of its
 * span. Paths of no route are `unmatched`, so a scan of random URLs cannot
 * grow the metrics without bound.
 */
export type RouteOf = (path: string) => string;

export function routeMatcher(templates: readonly string[]): RouteOf {
  const routes = templates.map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  return (path) => routes.find((r) => r.pattern.test(path))?.template ?? 'unmatched';
}
