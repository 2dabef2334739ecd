/**
 * The `/__emulator/` control API (not part of CVAT; no auth): state and keys, share file
 * deletion (path-checked), clock advance, segment touch, faults and chunk workers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cvatDate } from './clock.js';
import { HttpError, notFound, readJsonBody, sendJson } from './http.js';
import type { ServerDeps } from './server.js';

export async function control(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? 'GET';
  const op = path.replace(/^\/__emulator\//, '').replace(/\/$/, '');
  const body = method === 'POST' ? ((await readJsonBody(req)) as Record<string, unknown>) : {};
  if (method === 'GET' && (op === 'state' || op === '')) {
    sendJson(req, res, 200, deps.state.summary());
    return;
  }
  if (method === 'GET' && op === 'keys') {
    sendJson(req, res, 200, {
      ui: [...deps.state.uiChunkKeys()],
      cold: [...deps.state.coldUiChunkKeys()],
      cached: deps.state.cachedKeys(),
      builds: deps.state.buildsByKey(),
    });
    return;
  }
  if (method === 'POST' && op === 'share/delete') {
    if (!deps.shareDir) throw new HttpError(409, { detail: 'no share configured' });
    const path = body['path'];
    if (typeof path !== 'string' || !path) throw new HttpError(400, { detail: '"path" (share-relative) is required' });
    const outcome = await deps.control.deleteShareFile(path);
    if (outcome === 'refused') throw new HttpError(400, { detail: `refusing to delete "${path}"` });
    if (outcome === 'missing') throw new HttpError(404, { detail: `"${path}" does not exist` });
    sendJson(req, res, 200, { deleted: path });
    return;
  }
  if (method === 'POST' && op === 'clock/advance') {
    const ms = Number(body['ms']);
    if (!Number.isFinite(ms) || ms < 0) throw new HttpError(400, { detail: '"ms" must be a non-negative number' });
    const now = deps.control.advanceClock(ms);
    if (now === null) throw new HttpError(409, { detail: 'the emulator runs on the system clock (pass a ManualClock)' });
    sendJson(req, res, 200, { now: cvatDate(now) });
    return;
  }
  if (method === 'POST' && op === 'touch') {
    const jobId = Number(body['jobId']);
    try {
      deps.control.touchSegment(jobId);
    } catch {
      throw notFound();
    }
    sendJson(req, res, 200, { touched: jobId });
    return;
  }
  if (op === 'faults' && method === 'POST') {
    const match = typeof body['match'] === 'string' ? body['match'] : 'any';
    const id = deps.faults.add({
      match: ['any', 'chunk', 'data', 'meta', 'list'].includes(match) ? (match as 'any') : new RegExp(match),
      kind: (body['kind'] as 'status' | undefined) ?? 'status',
      ...(typeof body['status'] === 'number' ? { status: body['status'] as 503 } : {}),
      ...(typeof body['retryAfter'] === 'number' ? { retryAfter: body['retryAfter'] } : {}),
      ...(typeof body['delayMs'] === 'number' ? { delayMs: body['delayMs'] } : {}),
      times: typeof body['times'] === 'number' ? body['times'] : 1,
    });
    sendJson(req, res, 200, { id });
    return;
  }
  if (op === 'faults' && method === 'DELETE') {
    deps.faults.clear();
    sendJson(req, res, 200, { cleared: true });
    return;
  }
  if (op === 'workers' && method === 'POST') {
    if (body['running'] === false) deps.faults.stopWorkers();
    else deps.faults.startWorkers();
    sendJson(req, res, 200, { running: !deps.faults.workersStopped });
    return;
  }
  throw notFound();
}
