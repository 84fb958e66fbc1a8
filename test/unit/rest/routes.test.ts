import { status } from '@grpc/grpc-js';
import { MeshError, notFound } from '../../../runtime/src/errors';
import { RestError, httpStatusForGrpc, restErrorOf } from '../../../runtime/src/rest/http-errors';
import { matchRoute } from '../../../runtime/src/rest/routes';

describe('matchRoute', () => {
  test.each([
    ['GET', '/v2', { kind: 'serverMetadata' }],
    ['GET', '/v2/health/live', { kind: 'serverLive' }],
    ['HEAD', '/v2/health/ready', { kind: 'serverReady' }],
    ['GET', '/v2/models/fraud', { kind: 'modelMetadata', model: 'fraud', version: '' }],
    ['GET', '/v2/models/fraud/versions/3', { kind: 'modelMetadata', model: 'fraud', version: '3' }],
    ['GET', '/v2/models/fraud/ready', { kind: 'modelReady', model: 'fraud', version: '' }],
    ['GET', '/v2/models/fraud/versions/3/ready', { kind: 'modelReady', model: 'fraud', version: '3' }],
    ['POST', '/v2/models/fraud/infer', { kind: 'infer', model: 'fraud', version: '' }],
    ['POST', '/v2/models/fraud/versions/v1.2/infer?trace=1', { kind: 'infer', model: 'fraud', version: 'v1.2' }],
    // Names are decoded per segment, so an encoded slash stays part of the name.
    ['POST', '/v2/models/team%2Ffraud%20v2/infer', { kind: 'infer', model: 'team/fraud v2', version: '' }],
    // A model may be called "versions" or "ready".
    ['GET', '/v2/models/versions', { kind: 'modelMetadata', model: 'versions', version: '' }],
    ['GET', '/v2/models/ready/ready', { kind: 'modelReady', model: 'ready', version: '' }],
  ])('%s %s', (method, url, route) => {
    expect(matchRoute(method, url)).toEqual({ outcome: 'route', route });
  });

  test.each([
    '/', '/v1/models/x:predict', '/v2/', '/v2/health', '/v2/health/dead', '/v2/health/live/x', '/v2/models', '/v2/models/',
    '/v2/models//infer', '/v2/models/x/predict', '/v2/models/x/infer/more', '/v2/models/x/versions', '/v2/models/x/versions//infer',
    '/v2/models/x/versions/1/explain', '/v2%2Fhealth%2Flive', '/v2/health%2Flive', '/v2/models/x/',
  ])('%s is not found', (url) => {
    const match = matchRoute('GET', url);
    expect(match).toMatchObject({ outcome: 'notFound' });
    expect(match.outcome === 'notFound' && match.message).toContain('/v2/models/{name}');
  });

  test('a wrong method is 405 material with the allowed methods', () => {
    expect(matchRoute('GET', '/v2/models/x/infer')).toEqual({
      outcome: 'methodNotAllowed', allow: ['POST'], message: 'GET is not allowed on /v2/models/x/infer; use POST',
    });
    expect(matchRoute('DELETE', '/v2/models/x')).toMatchObject({ outcome: 'methodNotAllowed', allow: ['GET', 'HEAD'] });
    expect(matchRoute('POST', '/v2/health/ready')).toMatchObject({ outcome: 'methodNotAllowed', allow: ['GET', 'HEAD'] });
  });

  test('malformed percent-encoding is a bad request', () => {
    expect(matchRoute('GET', '/v2/models/%E0%A4%A/ready')).toEqual({
      outcome: 'badRequest', message: 'the path "/v2/models/%E0%A4%A/ready" has malformed percent-encoding',
    });
  });
});

describe('HTTP statuses for errors', () => {
  test.each([
    [status.INVALID_ARGUMENT, 400], [status.NOT_FOUND, 404], [status.UNAVAILABLE, 503], [status.DEADLINE_EXCEEDED, 504],
    [status.RESOURCE_EXHAUSTED, 429], [status.UNIMPLEMENTED, 501], [status.INTERNAL, 500], [status.UNKNOWN, 500],
    [status.FAILED_PRECONDITION, 500], [status.CANCELLED, 500],
  ])('gRPC code %p → HTTP %p', (code, http) => {
    expect(httpStatusForGrpc(code)).toBe(http);
  });

  test('MeshErrors, grpc-js errors and anything else become RestErrors with their message', () => {
    expect(restErrorOf(notFound('model x is not loaded'))).toMatchObject({ httpStatus: 404, message: 'model x is not loaded' });
    expect(restErrorOf(Object.assign(new Error('14 UNAVAILABLE: no connection'), { code: status.UNAVAILABLE, details: 'no connection' })))
      .toMatchObject({ httpStatus: 503, message: 'no connection' });
    expect(restErrorOf(new TypeError('boom'))).toMatchObject({ httpStatus: 500, message: 'boom' });
    const rest = new RestError(405, 'nope', { allow: 'POST' });
    expect(restErrorOf(rest)).toBe(rest);
    expect(restErrorOf(new MeshError(status.DEADLINE_EXCEEDED, 'slow')).httpStatus).toBe(504);
  });
});
