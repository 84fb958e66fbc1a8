/**
 * The KServe v2 REST routes, parsed from a request's method and URL. Pure; no I/O.
 */

export type ModelRouteKind = 'infer' | 'modelMetadata' | 'modelReady';
export type ServerRouteKind = 'serverLive' | 'serverReady' | 'serverMetadata';

export type Route =
  | { readonly kind: ModelRouteKind; readonly model: string; readonly version: string }
  | { readonly kind: ServerRouteKind };

export type RouteMatch =
  | { readonly outcome: 'route'; readonly route: Route }
  | { readonly outcome: 'notFound'; readonly message: string }
  | { readonly outcome: 'methodNotAllowed'; readonly allow: readonly string[]; readonly message: string }
  | { readonly outcome: 'badRequest'; readonly message: string };

const READ = ['GET', 'HEAD'] as const;
const WRITE = ['POST'] as const;


/** Matches `method` and `url` (path and optional query) against the v2 routes. */
export function matchRoute(method: string, url: string): RouteMatch {
  const path = url.split(/[?#]/, 1)[0];
  let segments: string[];
  try {
    // Decode per segment so an encoded "/" stays inside a model name.
    segments = path.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return { outcome: 'badRequest', message: `the path ${JSON.stringify(path)} has malformed percent-encoding` };
  }
  const route = routeFor(segments);
  if (!route) {
    return {
      outcome: 'notFound',
      message: `no route for ${path}; KServe v2 REST serves /v2, /v2/health/live, /v2/health/ready, `
        + '/v2/models/{name}[/versions/{version}], …/ready and …/infer',
    };
  }
  const allow: readonly string[] = route.kind === 'infer' ? WRITE : READ;
  if (!allow.includes(method)) {
    return { outcome: 'methodNotAllowed', allow, message: `${method} is not allowed on ${path}; use ${allow.join(' or ')}` };
  }
  return { outcome: 'route', route };
}

function routeFor(segments: readonly string[]): Route | undefined {
  if (segments[0] !== 'v2') return undefined;
  if (segments.length === 1) return { kind: 'serverMetadata' };
  if (segments[1] === 'health' && segments.length === 3) {
    if (segments[2] === 'live') return { kind: 'serverLive' };
    if (segments[2] === 'ready') return { kind: 'serverReady' };
    return undefined;
  }
  if (segments[1] !== 'models' || segments.length < 3) return undefined;
  const model = segments[2];
  let rest = segments.slice(3);
  let version = '';
  if (rest[0] === 'versions') {
    if (rest.length < 2) return undefined;
    version = rest[1];
    if (version === '') return undefined;
    rest = rest.slice(2);
  }
  if (model === '' || rest.length > 1) return undefined;
  switch (rest[0]) {
    case undefined: return { kind: 'modelMetadata', model, version };
    case 'ready': return { kind: 'modelReady', model, version };
    case 'infer': return { kind: 'infer', model, version };
    default: return undefined;
  }
}
